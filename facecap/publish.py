"""All or nothing: a command writes into a staging folder inside its output folder and publishes on success.

An output folder::

    out/
      run.json          the published run: command, config, versions, the files it wrote, "complete": true
      config.yaml       the run's resolved config, where the command has one
      ...               the command's outputs
      .facecap/         facecap's own while a run writes or where a cache is kept; never published, never
                        taken for a camera of a take:
        staging-<id>/   the run in progress writes every output here
        trash-<id>/     the previous run's files while the new ones replace them
        publish.json    the journal of a swap in progress
        cache/          kept across runs, failed ones included: caches and checkpoints

The run writing into out/ holds a lock on the folder (flock; released when it ends or dies), and a
second run into the same folder meanwhile is refused. On success, :func:`publishing` writes config.yaml
and run.json into the staging folder and swaps it in: it writes the journal, moves the old run.json out
first, then every file the old run.json lists (so no file of the old run survives beside the new ones),
moves the new files in and run.json last. Each step is a rename within one filesystem, so every file
appears whole; POSIX renames one name at a time, so during the swap (a few renames: milliseconds) a
reader may see new files beside missing old ones, but never a run.json: a folder whose run.json says
"complete": true holds exactly the files it lists, all of that run. SIGINT and SIGTERM wait until the
swap is done. A run killed during it (SIGKILL, power loss) leaves the journal, and the next run into the
folder finishes that swap first.

A run that fails or is interrupted (an exception, Ctrl-C, SIGTERM) removes its staging folder and leaves
the previous results, their config and run.json untouched; where it created the folder and kept nothing
in the cache, it removes the folder too. A run killed outright (SIGKILL) leaves its staging folder, and
the next run into the folder removes it.

A folder that holds anything but hidden entries and no run.json was not written by facecap, and one
whose run.json is another command's holds that command's results (a take that ``facecap synth`` wrote,
say): both are refused, rather than deleting or mixing with files the run does not own. Entries that
the old run.json does not list (another run's folder inside, a user's notes) are left as they are.

Single files (a rig npz, a calibration.json) are published by :func:`publishing_files`: written under a
hidden temporary name beside the target and renamed over it.
"""

import datetime
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecap import __version__
from facecap.config import config_to_dict, save_config
from facecap.errors import FacecapError
from facecap.shutdown import signals_deferred

try:
    import fcntl
except ImportError:  # not POSIX: runs into one folder are not kept apart
    fcntl = None

__all__ = ["Run", "publishing", "publishing_files", "command_line", "read_run", "run_record", "now", "RUN_FILE",
           "PRIVATE_DIR"]

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RUN_FORMAT = "facecap-run"
RUN_VERSION = 1
CONFIG_FILE = "config.yaml"
PRIVATE_DIR = ".facecap"
JOURNAL = "publish.json"
_STAGING, _TRASH = "staging-", "trash-"

_command: ContextVar[list[str] | None] = ContextVar("facecap_command_line", default=None)


@contextmanager
def command_line(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, runs record ``facecap`` + ``argv`` as their command line (the CLI sets it; a run
    started from Python records ``sys.argv``)."""
    token = _command.set(["facecap", *argv])
    try:
        yield
    finally:
        _command.reset(token)


@dataclass(frozen=True)
class Run:
    """A run in progress. ``staging``: where it writes every output (published as ``out`` on success);
    ``cache``: a folder kept across runs into ``out``, failed and killed ones included."""

    out: Path
    staging: Path
    command: str
    started: str

    @property
    def cache(self) -> Path:
        path = self.out / PRIVATE_DIR / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path


def read_run(folder: str | Path) -> dict[str, Any] | None:
    """The run.json of a published folder, or None when there is none (or it is not facecap's)."""
    path = Path(folder) / RUN_FILE
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    ok = (isinstance(data, dict) and data.get("format") == RUN_FORMAT and isinstance(data.get("files"), list)
          and all(isinstance(f, str) and _plain_name(f) for f in data["files"]))
    return data if ok else None


def _plain_name(name: str) -> bool:
    """A file name of the folder itself: no separator, not hidden, not '.' or '..'."""
    return bool(name) and "/" not in name and os.sep not in name and not name.startswith(".")


def now() -> str:
    """The time now, UTC, ISO 8601 to the second (run.json's 'started' and 'finished')."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str | None]:
    from importlib import metadata
    versions: dict[str, str | None] = {"facecap": __version__, "python": platform.python_version()}
    for dist in ("numpy", "torch"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, flushed to disk first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (its renames) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_folder(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders created, outermost first."""
    if path.exists() and not path.is_dir():
        raise FacecapError(f"output folder {path}: a file of that name exists")
    missing, existing = [], path
    while not existing.exists() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise FacecapError(f"cannot create the output folder {path}: {existing} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FacecapError(f"cannot create the output folder {path}: {err.strerror}") from err
    return missing[::-1]


def _lock(out: Path) -> int:
    """Lock the folder ``out`` for this process: an flock on the folder itself, released when the descriptor
    closes or the process dies."""
    try:
        fd = os.open(out, os.O_RDONLY)
    except OSError as err:
        raise FacecapError(f"cannot open the output folder {out}: {err.strerror}") from err
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise FacecapError(f"another facecap run is writing to {out}: wait for it to end, or choose another "
                               "output folder") from None
    return fd


def _retire(out: Path, trash: Path, name: str) -> None:
    """Move ``out/name`` (if there) into ``trash``."""
    target = out / name
    if not (target.exists() or target.is_symlink()):
        return
    dest = trash / name
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    os.rename(target, dest)


def _apply(out: Path, journal: dict[str, Any]) -> None:
    """Carry out (or finish) the swap the journal describes; every step can be repeated after a crash."""
    private = out / PRIVATE_DIR
    staging, trash = private / journal["staging"], private / journal["trash"]
    trash.mkdir(exist_ok=True)
    new = [n for n in journal["new"] if _plain_name(n)]
    old = [n for n in journal["old"] if _plain_name(n)]
    if (staging / RUN_FILE).exists():                     # the old run.json goes first: no reader trusts the rest
        _retire(out, trash, RUN_FILE)
    for name in dict.fromkeys(old + new):
        if name != RUN_FILE and (name not in new or (staging / name).exists() or (staging / name).is_symlink()):
            _retire(out, trash, name)
    for name in new:
        if name != RUN_FILE and ((staging / name).exists() or (staging / name).is_symlink()):
            os.rename(staging / name, out / name)
    if (staging / RUN_FILE).exists():
        os.rename(staging / RUN_FILE, out / RUN_FILE)
    _fsync_dir(out)
    (private / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _recover(out: Path) -> None:
    """Finish a swap a killed run left half done; remove dead runs' staging and trash (the lock is held)."""
    private = out / PRIVATE_DIR
    journal = private / JOURNAL
    if journal.exists():
        try:
            data = json.loads(journal.read_bytes())
        except (OSError, ValueError) as err:
            raise FacecapError(f"{journal}: a publish was interrupted and its journal does not read ({err}); "
                               f"check {out} and remove {journal}") from err
        log.warning("%s: finishing the publish of a run that was killed during it", out)
        _apply(out, data)
    for entry in private.iterdir():
        if entry.name.startswith((_STAGING, _TRASH)) and entry.is_dir():
            log.info("%s: removing %s, left by a run that was killed", out, entry.name)
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{JOURNAL}.") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)


def _check_owned(out: Path, command: str) -> None:
    """Refuse a folder that facecap did not write, or whose results are another command's."""
    previous = read_run(out)
    if previous is None:
        foreign = sorted(e.name for e in out.iterdir() if not e.name.startswith("."))
        if foreign:
            listing = ", ".join(foreign[:6]) + (", ..." if len(foreign) > 6 else "")
            raise FacecapError(f"output folder {out} holds files that no facecap run wrote ({listing}): give an "
                               "empty or new folder, or remove them")
    elif previous.get("command_name") != command:
        raise FacecapError(f"output folder {out} holds the results of 'facecap {previous.get('command_name')}'; "
                           f"a 'facecap {command}' run would replace them: give another folder")


def run_record(command: str, config: Any, files: Sequence[str], started: str, complete: bool = True
               ) -> dict[str, Any]:
    """The run.json record: the command line, its config, the versions, the files written, and whether
    the run completed."""
    return {"format": RUN_FORMAT, "version": RUN_VERSION, "command_name": command,
            "command": _command.get() or list(sys.argv), "cwd": os.getcwd(),
            "config": None if config is None else config_to_dict(config), "versions": _versions(),
            "started": started, "finished": now() if complete else None, "files": list(files),
            "complete": complete}


def _record(run: Run, config: Any, complete: bool) -> dict[str, Any]:
    files = sorted({e.name for e in run.staging.iterdir() if _plain_name(e.name)} | {RUN_FILE}) if complete else []
    return run_record(run.command, config, files, run.started, complete)


def _tidy(out: Path, created: list[Path], published: bool) -> None:
    """Remove facecap's private folder where it holds nothing (no cache), and after a failed run the folders
    it created where they hold nothing else."""
    private = out / PRIVATE_DIR
    cache = private / "cache"
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()
    if private.is_dir() and not any(private.iterdir()):
        private.rmdir()
    if published or not created or any(out.iterdir()):
        return
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


@contextmanager
def publishing(out: str | Path, command: str, config: Any = None) -> Iterator[Run]:
    """Stage a run's outputs and publish them into ``out`` on success only (see the module's docstring).

    Args:
        out: the output folder (created with its parents).
        command: the command's name ('fit', 'synth', ...): a folder holding another command's results is
            refused.
        config: the run's config dataclass, written as config.yaml and into run.json.
    Yields:
        The :class:`Run`: write every output under ``run.staging``; keep caches under ``run.cache``.
    Raises:
        FacecapError: ``out`` is a file or under one, is not writable, holds files facecap did not write
            or another command's results, or another run is writing into it.
    """
    out = Path(out)
    created = _make_folder(out)
    try:
        lock = _lock(out)
    except BaseException:
        _tidy(out, created, published=False)
        raise
    private = out / PRIVATE_DIR
    staging = None
    published = False
    try:
        if private.is_dir():
            _recover(out)
        _check_owned(out, command)
        try:
            private.mkdir(exist_ok=True)
        except OSError as err:
            raise FacecapError(f"cannot write into the output folder {out}: {err.strerror}") from err
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{os.getpid()}-", dir=private))
        run = Run(out, staging, command, now())
        _write_json_atomic(staging / RUN_FILE, _record(run, config, complete=False))
        yield run
        if config is not None:
            save_config(config, staging / CONFIG_FILE)
        record = _record(run, config, complete=True)
        _write_json_atomic(staging / RUN_FILE, record)
        with signals_deferred():
            trash = Path(tempfile.mkdtemp(prefix=_TRASH, dir=private))
            previous = read_run(out)
            journal = {"staging": staging.name, "trash": trash.name,
                       "old": [] if previous is None else previous["files"], "new": record["files"]}
            _write_json_atomic(private / JOURNAL, journal)
            _apply(out, journal)
            published = True                              # a signal held back is raised after this block
        log.info("published %s (%d files)", out, len(record["files"]))
    finally:
        if staging is not None and not published:
            shutil.rmtree(staging, ignore_errors=True)
        _tidy(out, created, published)
        os.close(lock)


def _partial_name(target: Path, pid: int) -> str:
    return f".{target.stem}.partial-{pid}-{secrets.token_hex(4)}{target.suffix}"


def _remove_dead_partials(target: Path) -> None:
    """Temporary files of ``target`` left by processes that no longer run (killed outright)."""
    prefix = f".{target.stem}.partial-"
    for path in target.parent.glob(f"{prefix}*{target.suffix}"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            pass


@contextmanager
def publishing_files(*targets: str | Path) -> Iterator[list[Path]]:
    """Temporary paths for ``targets``, one each, in the same folder with the same suffix; on success each
    is renamed over its target (all in a row, SIGINT and SIGTERM held back), on failure removed.

    Every target file is whole, old or new; a set of several is replaced together except by a kill in the
    microseconds between renames. Raises FacecapError where a target is a folder or its folder cannot be
    created.
    """
    paths = tuple(Path(t) for t in targets)
    for target in paths:
        if target.is_dir():
            raise FacecapError(f"output file {target}: a folder of that name exists")
        _make_folder(target.parent)
        _remove_dead_partials(target)
    temps = [t.parent / _partial_name(t, os.getpid()) for t in paths]
    try:
        yield temps
        absent = [str(t) for t, tmp in zip(paths, temps) if not tmp.exists()]
        if absent:
            raise RuntimeError(f"publishing_files: nothing was written for {', '.join(absent)}")
        with signals_deferred():
            for tmp, target in zip(temps, paths):
                os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
