"""The ``facecap`` command: one entry point, one module per subcommand in this package.

Each subcommand module defines ``register(subparsers)``, which adds its parser (through
:func:`facecap.cli.common.add_command`) with a ``func`` default that runs it. Commands are thin: they
parse arguments and configs and call library functions. Only the command being run is imported, so
that ``facecap --help`` and a mistyped command answer at once instead of loading torch first.
"""

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from facecap import __version__

__all__ = ["main", "build_parser", "COMMANDS"]

log = logging.getLogger("facecap")

# name -> (module in this package, one-line summary), in the order ``facecap --help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "synthesise a take of the built-in head, fit it, export, print the accuracy"),
    "calibrate": ("calibrate", "calibrate cameras from board images (or import a calibration)"),
    "synth": ("synth", "render a synthetic take with ground truth (for testing and tuning)"),
    "fit": ("fit", "fit a multi-view take: weights and head pose per frame"),
    "actor": ("actor", "build a performer's profile (identity, albedo, detector offsets) for their takes' fits"),
    "batch": ("batch", "fit the takes of a manifest in chunks on a Ray cluster (local, or one to join)"),
    "export": ("export", "write a fit's delivery files again: CSV, Live Link, glTF, FBX (no refit)"),
    "train-init": ("train_init", "train a network that starts the fit (and previews takes) from the frames"),
    "preview": ("preview", "a fast preview of a take: the trained network's weights and head pose per frame"),
    "solve": ("solve", "solve blendshape weights for a mesh sequence (inverse rigging)"),
    "tune-rig": ("tune_rig", "tune the tracking rig for semantically right controls (Omens et al. 2025)"),
    "rig": ("rig", "inspect a rig, or convert between rig.npz and a folder of OBJs"),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (global options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``facecap`` parser, with the full parsers of ``commands`` (default: all) and one-line stubs
    for the others."""
    parser = argparse.ArgumentParser(
        prog="facecap",
        description="Markerless facial performance capture from multi-view video.",
        epilog="Start with 'facecap demo'. Each command explains itself: facecap <command> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"facecap {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(title="commands", metavar="<command>")
    wanted = COMMANDS if commands is None else commands
    for name, (module, summary) in COMMANDS.items():
        if name in wanted:
            importlib.import_module(f"{__name__}.{module}").register(sub)
        else:
            sub.add_parser(name, help=summary, add_help=False)
    return parser


def _show_progress_bars() -> None:
    """tqdm bars on stderr for the library's long loops (:mod:`facecap.progress`)."""
    from functools import partial

    from tqdm import tqdm

    from facecap.progress import show_progress
    show_progress(partial(tqdm, leave=False, dynamic_ncols=True))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from facecap.errors import FacecapError
    from facecap.publish import command_line
    from facecap.shutdown import SIGTERM_EXIT_CODE, Terminated, sigterm_raises
    if not args.quiet:
        _show_progress_bars()
    with command_line(argv), sigterm_raises():
        try:
            from tqdm.contrib.logging import logging_redirect_tqdm
            with logging_redirect_tqdm():
                return int(args.func(args) or 0)
        except FacecapError as err:
            print(f"facecap {args.command_name}: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:  # a file that cannot be read or written: say which, without a traceback
            log.debug("facecap %s failed", args.command_name, exc_info=True)
            print(f"facecap {args.command_name}: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"facecap {args.command_name}: interrupted", file=sys.stderr)
            return 130
        except Terminated:
            print(f"facecap {args.command_name}: terminated (SIGTERM)", file=sys.stderr)
            return SIGTERM_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
