"""Helpers every subcommand shares: config options, help text, the output argument."""

import argparse
import textwrap
from pathlib import Path
from typing import Any, TypeVar

from facecap.config import config_keys, describe_config, load_config

__all__ = ["add_command", "add_config_options", "add_out_argument", "config_from_args", "npz_path", "frame_span"]

C = TypeVar("C")


def add_command(subparsers: Any, name: str, description: str, examples: list[str],
                config_cls: type | None = None) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` (its summary from :data:`facecap.cli.COMMANDS`), whose ``--help`` shows
    examples and, with a config class, every config key."""
    from facecap.cli import COMMANDS
    summary = COMMANDS[name][1]
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    if config_cls is not None:
        def listing(expert: bool) -> str:
            return "\n".join(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent="      ")
                             for line in describe_config(config_cls, expert=expert))
        epilog += ("\n\nconfig keys (set in a YAML file given to --config, or one at a time with "
                   f"--set key=value):\n{listing(False)}")
        expert = listing(True)
        if expert:
            epilog += f"\n\nexpert keys (tuning: change them when a measurement on your takes says so):\n{expert}"
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
    """``key=default`` of one of the command's own numeric keys, common before expert, a dotted one where
    there is one."""
    numeric = [k for k in config_keys(config_cls, expert=False) + config_keys(config_cls, expert=True)
               if isinstance(k.default, (int, float)) and not isinstance(k.default, bool)]
    example = next((k for k in numeric if "." in k.name), numeric[0] if numeric else None)
    return "KEY=VALUE" if example is None else f"{example.name}={example.default}"


def config_from_args(config_cls: type[C], args: argparse.Namespace) -> C:
    """The command's config: defaults, then ``--config FILE``, then each ``--set``."""
    return load_config(config_cls, args.config, args.overrides)


def npz_path(path: Path) -> Path:
    """``path`` with the .npz suffix numpy's savez would give it."""
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def frame_span(text: str) -> tuple[int, int | None]:
    """``--frames A:B``: (A, B), either end open (A: or :B)."""
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start or 0), int(stop) if stop else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B (e.g. 100:400, 100: or :400), got {text!r}") from None
