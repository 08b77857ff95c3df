"""Helpers every subcommand shares: config options, help text, the output argument."""

import argparse
import textwrap
from pathlib import Path
from typing import Any, TypeVar

from facecap.config import config_to_dict, describe_config, load_config

__all__ = ["add_command", "add_config_options", "add_out_argument", "config_from_args", "npz_path"]

C = TypeVar("C")


def add_command(subparsers: Any, name: str, description: str, examples: list[str],
                config_cls: type | None = None) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` (its summary from :data:`facecap.cli.COMMANDS`), whose ``--help`` shows
    examples and, with a config class, every config key."""
    from facecap.cli import COMMANDS
    summary = COMMANDS[name][1]
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    if config_cls is not None:
        keys = "\n".join(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent="      ")
                         for line in describe_config(config_cls))
        epilog += ("\n\nconfig keys (set in a YAML file given to --config, or one at a time with "
                   f"--set key=value):\n{keys}")
    parser = subparsers.add_parser(name, help=summary, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(command_name=name)
    if config_cls is not None:
        add_config_options(parser, config_cls)
    return parser


def add_out_argument(parser: argparse.ArgumentParser, help: str, required: bool = True,
                     default: Path | None = None) -> None:
    """``-o/--out``: where every command writes."""
    parser.add_argument("-o", "--out", type=Path, required=required and default is None, default=default, help=help)


def add_config_options(parser: argparse.ArgumentParser, config_cls: type) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML file of config keys (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one config key (listed below), e.g. --set {_example_override(config_cls)} "
                             "(repeatable)")


def _example_override(config_cls: type) -> str:
    """``key=default`` of one of the command's own numeric keys, a dotted one where there is one."""
    def leaves(section: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for key, value in section.items():
            if isinstance(value, dict):
                found += leaves(value, f"{prefix}{key}.")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                found.append((f"{prefix}{key}", value))
        return found
    numeric = leaves(config_to_dict(config_cls()))
    key, value = next((kv for kv in numeric if "." in kv[0]), numeric[0] if numeric else ("KEY", "VALUE"))
    return f"{key}={value}"


def config_from_args(config_cls: type[C], args: argparse.Namespace) -> C:
    """The command's config: defaults, then ``--config FILE``, then each ``--set``."""
    return load_config(config_cls, args.config, args.overrides)


def npz_path(path: Path) -> Path:
    """``path`` with the .npz suffix numpy's savez would give it."""
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
