"""The solved animation and its JSON file (docs/formats.md §4).

An :class:`Animation` is what every exporter reads: per-frame shape weights and the head pose
that maps head (rig) space to world space, ``X_world = R @ X_head + t``.
"""

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecap.checks import check_shape
from facecap.errors import FormatError, ShapeError
from facecap.units import UNITS_IN_MM

__all__ = ["Animation", "save_animation_json", "load_animation_json", "animation_to_dict", "animation_from_dict",
           "ANIMATION_FORMAT", "ANIMATION_VERSION"]

log = logging.getLogger(__name__)

ANIMATION_FORMAT = "facecap-animation"
ANIMATION_VERSION = 1
TIMECODE_PATTERN = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")
# Keys of the JSON this module reads itself; any other top-level key is kept in ``Animation.extra``.
_KNOWN_KEYS = ("format", "version", "fps", "units", "shape_names", "frames", "start_timecode")
# A stored time may differ from frame / fps by this much (seconds) before a warning.
_TIME_TOLERANCE_S = 1e-6


@dataclass(frozen=True)
class Animation:
    """Per-frame blendshape weights and head pose of one take.

    Attributes:
        shape_names: K shape names, as the rig names them.
        weights: [T, K] float64, meant to lie in [0, 1].
        R: [T, 3, 3] float64 head-to-world rotations.
        t: [T, 3] float64 head-to-world translations, in ``units``.
        fps: frames per second of the take.
        units: length unit of ``t``: "mm", "cm" or "m".
        frames: [T] int frame numbers counted from the start of the take's ``frame_range``;
            None means 0..T-1.
        start_timecode: SMPTE "HH:MM:SS:FF" of frame 0 (Live Link export counts from it).
        extra: other top-level JSON keys (e.g. "generator"), written back on save.
    """

    shape_names: tuple[str, ...]
    weights: np.ndarray
    R: np.ndarray
    t: np.ndarray
    fps: float = 30.0
    units: str = "mm"
    frames: np.ndarray | None = None
    start_timecode: str = "00:00:00:00"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.shape_names)
        weights = np.asarray(self.weights, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        t = np.asarray(self.t, dtype=np.float64)
        T = check_shape(weights, f"T {len(names)}", "weights")["T"]
        check_shape(R, f"{T} 3 3", "R")
        check_shape(t, f"{T} 3", "t")
        frames = None
        if self.frames is not None:
            frames = np.asarray(self.frames)
            if frames.dtype.kind not in "iu":
                raise ShapeError(f"frames must be integers, got dtype {frames.dtype}")
            check_shape(frames, f"{T}", "frames")
            frames = frames.astype(np.int64)
        if len(set(names)) != len(names):
            raise ValueError("shape_names must be unique")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.units not in UNITS_IN_MM:
            raise ValueError(f"units must be one of {', '.join(UNITS_IN_MM)}, got {self.units!r}")
        if not TIMECODE_PATTERN.match(self.start_timecode):
            raise ValueError(f"start_timecode must look like HH:MM:SS:FF, got {self.start_timecode!r}")
        for key, value in (("weights", weights), ("R", R), ("t", t)):
            if not np.isfinite(value).all():
                raise ValueError(f"{key} has {int((~np.isfinite(value)).sum())} NaN or infinite entries")
        for key, value in (("shape_names", names), ("weights", weights), ("R", R), ("t", t), ("frames", frames),
                           ("fps", float(self.fps)), ("extra", dict(self.extra))):
            object.__setattr__(self, key, value)

    @property
    def num_frames(self) -> int:
        return self.weights.shape[0]

    @property
    def num_shapes(self) -> int:
        return self.weights.shape[1]

    @property
    def frame_numbers(self) -> np.ndarray:
        """[T] int64 frame numbers (``frames`` or 0..T-1)."""
        return np.arange(self.num_frames, dtype=np.int64) if self.frames is None else self.frames

    @property
    def times(self) -> np.ndarray:
        """[T] float64 seconds from the first frame of the take's frame_range: frame / fps."""
        return self.frame_numbers / self.fps


def animation_to_dict(anim: Animation) -> dict[str, Any]:
    """The JSON object of docs/formats.md §4 (plus ``start_timecode`` and the ``extra`` keys)."""
    out: dict[str, Any] = {"format": ANIMATION_FORMAT, "version": ANIMATION_VERSION, "fps": anim.fps,
                           "units": anim.units, "start_timecode": anim.start_timecode,
                           "shape_names": list(anim.shape_names)}
    out["frames"] = [
        {"frame": int(f), "time": float(s), "weights": w.tolist(), "head": {"R": R.tolist(), "t": t.tolist()}}
        for f, s, w, R, t in zip(anim.frame_numbers, anim.times, anim.weights, anim.R, anim.t)]
    for key, value in anim.extra.items():
        if key in _KNOWN_KEYS:
            raise ValueError(f"Animation.extra may not hold the format key {key!r}")
        out[key] = value
    return out


def save_animation_json(anim: Animation, path: str | Path) -> Path:
    """Write ``anim`` as animation.json, one frame a line, atomically (temp file then rename).

    Floats are written with Python's shortest round-trip repr, so loading gives the same numbers.
    """
    path = Path(path)
    data = animation_to_dict(anim)
    frames = data.pop("frames")
    head = "".join(f" {json.dumps(key)}: {json.dumps(value)},\n" for key, value in data.items())
    lines = ",\n".join("  " + json.dumps(frame) for frame in frames)
    text = f'{{\n{head} "frames": [\n{lines}\n ]\n}}\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    log.info("wrote %s (%d frames, %d shapes)", path, anim.num_frames, anim.num_shapes)
    return path


def _require(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise FormatError(f"{where}: key '{key}' is missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise FormatError(f"{where}: key '{key}' must be {names}, got {type(value).__name__}")
    return value


def _float_array(value: Any, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise FormatError(f"{where}: key '{key}' must hold numbers ({err})") from None
    if arr.shape != shape:
        raise FormatError(f"{where}: key '{key}' must have shape {list(shape)}, got {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise FormatError(f"{where}: key '{key}' holds NaN or infinite values")
    return arr


def animation_from_dict(data: Any, source: str = "animation") -> Animation:
    """Validate a parsed animation JSON object; FormatError messages name ``source`` and the key."""
    if not isinstance(data, dict):
        raise FormatError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != ANIMATION_FORMAT:
        raise FormatError(f"{source}: key 'format' must be {ANIMATION_FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != ANIMATION_VERSION:
        raise FormatError(f"{source}: key 'version' must be {ANIMATION_VERSION}, got {data.get('version')!r}")
    fps = float(_require(data, "fps", (int, float), source))
    if not (math.isfinite(fps) and fps > 0):
        raise FormatError(f"{source}: key 'fps' must be positive, got {fps}")
    units = _require(data, "units", str, source)
    if units not in UNITS_IN_MM:
        raise FormatError(f"{source}: key 'units' must be one of {', '.join(UNITS_IN_MM)}, got {units!r}")
    names = _require(data, "shape_names", list, source)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise FormatError(f"{source}: key 'shape_names' must be a list of unique strings")
    timecode = data.get("start_timecode", "00:00:00:00")
    if not isinstance(timecode, str) or not TIMECODE_PATTERN.match(timecode):
        raise FormatError(f"{source}: key 'start_timecode' must look like HH:MM:SS:FF, got {timecode!r}")
    frames = _require(data, "frames", list, source)
    K, T = len(names), len(frames)
    numbers = np.zeros(T, dtype=np.int64)
    weights, R, t = np.zeros((T, K)), np.zeros((T, 3, 3)), np.zeros((T, 3))
    for i, frame in enumerate(frames):
        where = f"{source}: frames[{i}]"
        if not isinstance(frame, dict):
            raise FormatError(f"{where}: expected an object, got {type(frame).__name__}")
        numbers[i] = _require(frame, "frame", int, where)
        weights[i] = _float_array(_require(frame, "weights", list, where), (K,), where, "weights")
        head = _require(frame, "head", dict, where)
        R[i] = _float_array(_require(head, "R", list, f"{where}.head"), (3, 3), f"{where}.head", "R")
        t[i] = _float_array(_require(head, "t", list, f"{where}.head"), (3,), f"{where}.head", "t")
        time = frame.get("time")
        if isinstance(time, (int, float)) and abs(time - numbers[i] / fps) > _TIME_TOLERANCE_S:
            log.warning("%s: 'time' %s differs from frame / fps = %s; using frame / fps", where, time,
                        numbers[i] / fps)
    extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS}
    plain = np.array_equal(numbers, np.arange(T))
    return Animation(shape_names=tuple(names), weights=weights, R=R, t=t, fps=fps, units=units,
                     frames=None if plain else numbers, start_timecode=timecode, extra=extra)


def load_animation_json(path: str | Path) -> Animation:
    """Read and validate animation.json (or a take's ground_truth.json); FormatError names file and key."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"animation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(f"{path}: not valid JSON ({err})") from None
    return animation_from_dict(data, str(path))
