"""The batch manifest: which takes to fit, with which rig, actor profiles and config, and where to.

A YAML file (docs/formats.md); its smallest form::

    rig: rigs/ict_full.npz
    out: fits/day1
    takes: [takes/day1/*]

Optional keys: ``config`` (a fit config YAML, as ``facecap fit --config``), ``set`` (a list of
``key=value`` overrides of it), ``actor`` (an actor profile for every take), ``landmarks`` (a landmarks
file for every take instead of the detector; ``{take}`` in it stands for each take's folder, as in
``{take}/landmarks.json``), ``tracking_rig``, ``chunk_frames``, ``chunk_overlap``, ``retries``. A
``takes`` entry is a take folder or a glob of them, or a mapping ``{take: PATH or glob, actor: PATH,
calibration: PATH, landmarks: PATH}`` that gives its takes their own. Relative paths are the manifest
folder's.
"""

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from facecap.config import load_config
from facecap.errors import ConfigError
from facecap.fit.config import FitConfig

__all__ = ["Manifest", "TakeJob", "load_manifest", "DEFAULT_CHUNK_FRAMES", "DEFAULT_CHUNK_OVERLAP",
           "DEFAULT_RETRIES"]

DEFAULT_CHUNK_FRAMES = 300      # ten seconds at 30 fps: minutes of a GPU, a take of hours in hundreds of tasks
DEFAULT_CHUNK_OVERLAP = 16      # frames cross-faded between neighbouring chunks
DEFAULT_RETRIES = 3             # Ray's retries of a chunk whose worker died
_KEYS = ("rig", "out", "takes", "config", "set", "actor", "landmarks", "tracking_rig", "chunk_frames", "chunk_overlap",
         "retries")
_TAKE_KEYS = ("take", "actor", "calibration", "landmarks")
TAKE_PLACEHOLDER = "{take}"


@dataclass(frozen=True)
class TakeJob:
    """One take of the batch: ``name`` (its folder's, the name of its output folder), its folder, its
    calibration, its actor profile (None: the batch builds one from the take's first chunk) and its
    landmarks file (None: as the config says)."""

    name: str
    path: Path
    calibration: Path
    actor: Path | None
    landmarks: Path | None = None


@dataclass(frozen=True)
class Manifest:
    """A batch, as its manifest file says (see the module docstring).

    Attributes:
        source: the manifest file. rig, tracking_rig: the animation rig and the rig to track with (None: the
        animation rig). out: the batch's output folder. takes: the takes in order. config: the fit config;
        config_file, overrides: where it came from. chunk_frames, chunk_overlap: the chunks (see
        :func:`facecap.fit.chunks.chunk_spans`). retries: Ray's retries of a task whose worker died.
    """

    source: Path
    rig: Path
    tracking_rig: Path | None
    out: Path
    takes: tuple[TakeJob, ...]
    config: FitConfig
    config_file: Path | None
    overrides: tuple[str, ...]
    chunk_frames: int
    chunk_overlap: int
    retries: int


def _path(value: Any, key: str, base: Path, where: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: key '{key}' must be a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _int(data: dict[str, Any], key: str, default: int, minimum: int, where: Path) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}: key '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _take_folders(pattern: Path, where: Path) -> list[Path]:
    """The take folders a ``takes`` entry names: a folder, or the folders a glob matches (sorted)."""
    text = str(pattern)
    if glob.has_magic(text):
        found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_dir())
        if not found:
            raise ConfigError(f"{where}: takes entry {text!r} matches no folder")
        return found
    if not pattern.is_dir():
        raise ConfigError(f"{where}: take folder not found: {pattern}")
    return [pattern]


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest; its config is resolved (file, then overrides) and checked.

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, missing or of the wrong kind, a take
            folder is missing, a glob matches nothing, two takes share a name, or the config is wrong (the
            message names the key).
    """
    where = Path(path)
    try:
        data = yaml.safe_load(where.read_bytes().decode())
    except FileNotFoundError:
        raise ConfigError(f"manifest not found: {where}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{where}: not a readable YAML manifest ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a manifest is a mapping of keys ({', '.join(_KEYS)})")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(_KEYS)}")
    for key in ("rig", "out", "takes"):
        if key not in data:
            raise ConfigError(f"{where}: key '{key}' is required (a manifest needs rig, out and takes)")
    base = where.resolve().parent
    actor = _path(data["actor"], "actor", base, where) if data.get("actor") is not None else None
    landmarks = data.get("landmarks")

    def landmarks_of(template: Any, folder: Path, key: str) -> Path | None:
        if template is None:
            return None
        if not isinstance(template, str) or not template:
            raise ConfigError(f"{where}: key '{key}' must be a path, got {template!r}")
        return _path(template.replace(TAKE_PLACEHOLDER, str(folder)), key, base, where)
    entries = data["takes"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: key 'takes' must be a list of take folders or globs")
    takes: list[TakeJob] = []
    for i, entry in enumerate(entries):
        key = f"takes[{i}]"
        if isinstance(entry, dict):
            extra = sorted(set(entry) - set(_TAKE_KEYS))
            if extra or "take" not in entry:
                raise ConfigError(f"{where}: {key} must have 'take' and may have 'actor' and 'calibration'"
                                  + (f" (not '{extra[0]}')" if extra else ""))
            pattern = _path(entry["take"], f"{key}.take", base, where)
            own_actor = _path(entry["actor"], f"{key}.actor", base, where) if entry.get("actor") else actor
            calibration = _path(entry["calibration"], f"{key}.calibration", base, where) \
                if entry.get("calibration") else None
            own_landmarks, landmarks_key = entry.get("landmarks", landmarks), f"{key}.landmarks"
        else:
            pattern, own_actor, calibration = _path(entry, key, base, where), actor, None
            own_landmarks, landmarks_key = landmarks, "landmarks"
        for folder in _take_folders(pattern, where):
            takes.append(TakeJob(folder.name, folder, calibration or folder / "calibration.json", own_actor,
                                 landmarks_of(own_landmarks, folder, landmarks_key)))
    names: dict[str, Path] = {}
    for job in takes:
        if job.name in names:
            raise ConfigError(f"{where}: two takes are named {job.name!r} ({names[job.name]} and {job.path}); "
                              "each take's results go to out/<take name>")
        names[job.name] = job.path
    overrides = data.get("set") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{where}: key 'set' must be a list of key=value strings")
    config_file = _path(data["config"], "config", base, where) if data.get("config") is not None else None
    try:
        config = load_config(FitConfig, config_file, overrides)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
    chunk_frames = _int(data, "chunk_frames", DEFAULT_CHUNK_FRAMES, 1, where)
    chunk_overlap = _int(data, "chunk_overlap", DEFAULT_CHUNK_OVERLAP, 0, where)
    if chunk_frames < 2 * chunk_overlap + 1:
        raise ConfigError(f"{where}: chunk_overlap ({chunk_overlap}) must be at most half of chunk_frames "
                          f"({chunk_frames}), less a frame")
    return Manifest(source=where, rig=_path(data["rig"], "rig", base, where),
                    tracking_rig=_path(data["tracking_rig"], "tracking_rig", base, where)
                    if data.get("tracking_rig") is not None else None,
                    out=_path(data["out"], "out", base, where), takes=tuple(takes), config=config,
                    config_file=config_file, overrides=tuple(overrides), chunk_frames=chunk_frames,
                    chunk_overlap=chunk_overlap, retries=_int(data, "retries", DEFAULT_RETRIES, 0, where))
