"""The ``facecap`` command: one entry point, one module per subcommand in this package.

Each subcommand module defines ``COMMAND`` (its name), ``ORDER`` (its place in ``--help``) and
``register(subparsers)``, which adds a parser whose ``func`` default runs the command. Commands
are thin: they parse arguments and configs and call library functions.
"""

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from facecap import __version__
from facecap.errors import FacecapError

__all__ = ["main", "build_parser"]

log = logging.getLogger("facecap")

_NOT_COMMANDS = {"common"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facecap",
        description="Markerless facial performance capture from multi-view video.",
        epilog="Start with 'facecap demo'. Each command explains itself: facecap <command> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"facecap {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(title="commands", metavar="<command>")
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_COMMANDS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    for module in sorted(modules, key=lambda m: m.ORDER):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FacecapError as err:
        print(f"facecap {getattr(args, 'command_name', '')}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
