"""Open a take (docs/formats.md §2): camera folders and videos, take.json timing, streaming frame access."""

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecap.camera.model import Calibration
from facecap.errors import FacecapError, FormatError, FrameError
from facecap.publish import RUN_FILE
from facecap.take.cache import FrameCache
from facecap.take.sources import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, FolderSource, FrameSource, VideoSource, natural_key,
                                  to_float)

__all__ = ["Take", "TakeInfo", "open_take", "read_take_json", "DEFAULT_CACHE_FRAMES", "DEFAULT_FPS"]

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
DEFAULT_TIMECODE = "00:00:00:00"
# Enough for a couple of frames of a 9-camera rig; 16 full-HD 8-bit frames are ~100 MB.
DEFAULT_CACHE_FRAMES = 16
TIMECODE_RE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")


@dataclass(frozen=True)
class TakeInfo:
    """take.json, all keys optional (docs/formats.md §2).

    Attributes:
        fps: frames per second, or None when take.json does not say.
        start_timecode: "HH:MM:SS:FF" of the first frame of ``frame_range``.
        frame_range: half-open [start, stop) in take frames, or None for every frame all cameras have.
        frame_offsets: camera name -> k, meaning take frame i is that camera's file or video frame i + k.
        cameras: the cameras take.json lists, or None when it has no 'cameras' key.
    """

    fps: float | None = None
    start_timecode: str = DEFAULT_TIMECODE
    frame_range: tuple[int, int] | None = None
    frame_offsets: dict[str, int] = field(default_factory=dict)
    cameras: tuple[str, ...] | None = None


def read_take_json(path: Path) -> TakeInfo:
    """Parse take.json; a missing file gives the defaults, a malformed one raises FormatError naming the key."""
    if not path.exists():
        return TakeInfo()
    try:
        data: dict[str, Any] = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise FormatError(f"{path}: cannot be read ({err.strerror})") from err
    if not isinstance(data, dict):
        raise FormatError(f"{path}: must hold a JSON object")
    fps = data.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or fps <= 0):
        raise FormatError(f"{path}: 'fps' must be a positive number, got {fps!r}")
    timecode = data.get("start_timecode", DEFAULT_TIMECODE)
    if not isinstance(timecode, str) or not TIMECODE_RE.match(timecode):
        raise FormatError(f"{path}: 'start_timecode' must look like HH:MM:SS:FF, got {timecode!r}")
    frame_range = data.get("frame_range")
    if frame_range is not None:
        ok = (isinstance(frame_range, list) and len(frame_range) == 2
              and all(isinstance(v, int) for v in frame_range) and 0 <= frame_range[0] < frame_range[1])
        if not ok:
            raise FormatError(f"{path}: 'frame_range' must be [start, stop) with 0 <= start < stop, "
                              f"got {frame_range!r}")
        frame_range = (int(frame_range[0]), int(frame_range[1]))
    cameras = data.get("cameras")
    if cameras is not None and not isinstance(cameras, dict):
        raise FormatError(f"{path}: 'cameras' must map camera names to {{\"frame_offset\": k}}, got {cameras!r}")
    offsets = {}
    for name, cam in (cameras or {}).items():
        offset = cam.get("frame_offset", 0) if isinstance(cam, dict) else None
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise FormatError(f"{path}: cameras.{name}.frame_offset must be an integer, got {offset!r}")
        offsets[str(name)] = offset
    return TakeInfo(None if fps is None else float(fps), timecode, frame_range, offsets,
                    None if cameras is None else tuple(str(n) for n in cameras))


def _find_sources(folder: Path) -> dict[str, Path]:
    """Camera name -> frame folder or video file, in natural order of the names; hidden entries (a leading
    dot, such as facecap's own .facecap folder) and facecap's output folders inside the take (they hold a
    run.json) are not cameras."""
    found: dict[str, Path] = {}
    for entry in folder.iterdir():
        if entry.name.startswith(".") or (entry / RUN_FILE).is_file():
            continue
        if entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir()):
            name = entry.name
        elif entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            name = entry.stem
        else:
            continue
        if name in found:
            raise FacecapError(f"take {folder}: camera '{name}' is both {found[name].name} and {entry.name}; keep one")
        found[name] = entry
    return dict(sorted(found.items(), key=lambda kv: natural_key(kv[0])))


class Take:
    """A multi-view recording read on demand through a bounded frame cache.

    Frame indices ``i`` run over ``range(num_frames)`` and count from ``frame_range[0]``: file or video frame
    ``frame_range[0] + i + frame_offset`` of a camera. A part of a take (``open_take``'s ``frames``) starts
    ``first_frame`` frames into the take's own frame range: index ``i`` is take frame ``first_frame + i``.
    """

    def __init__(self, path: Path, sources: list[FrameSource], info: TakeInfo, frame_range: tuple[int, int],
                 calibration: Calibration | None, cache: FrameCache, first_frame: int = 0) -> None:
        self.path = path
        self.first_frame = first_frame
        self._sources = sources
        self._index = {s.name: i for i, s in enumerate(sources)}
        self.info = info
        self.frame_range = frame_range
        video_fps = [s.fps for s in sources if isinstance(s, VideoSource) and s.fps > 0]
        self.fps = info.fps or (video_fps[0] if video_fps else DEFAULT_FPS)
        self.start_timecode = info.start_timecode
        self.calibration = calibration
        self.cache = cache

    @property
    def camera_names(self) -> list[str]:
        return [s.name for s in self._sources]

    @property
    def num_frames(self) -> int:
        return self.frame_range[1] - self.frame_range[0]

    def _source(self, cam: str | int) -> FrameSource:
        if isinstance(cam, (int, np.integer)):
            if not 0 <= cam < len(self._sources):
                raise FacecapError(f"camera index {cam} out of range: the take has {len(self._sources)} cameras")
            return self._sources[int(cam)]
        if cam not in self._index:
            raise FacecapError(f"no camera '{cam}' in take {self.path}; cameras: {', '.join(self.camera_names)}")
        return self._sources[self._index[cam]]

    def image_size(self, cam: str | int) -> tuple[int, int]:
        """(width, height) in pixels of camera ``cam`` (name or index)."""
        return self._source(cam).image_size

    def source_path(self, cam: str | int) -> Path:
        """The camera's frame folder or video file."""
        return self._source(cam).path

    def source_index(self, cam: str | int, i: int) -> int:
        """The camera's file or video frame index that shows take frame index ``i``."""
        if not 0 <= i < self.num_frames:
            raise FacecapError(f"frame {i} out of range: take {self.path} has {self.num_frames} frames")
        source = self._source(cam)
        return self.frame_range[0] + int(i) + self.info.frame_offsets.get(source.name, 0)

    def frame_raw(self, cam: str | int, i: int) -> np.ndarray:
        """Frame ``i`` of ``cam`` as stored (read-only [H, W, 3] uint8, uint16 or float32 RGB), via the cache.

        Raises MissingFrameError or DamagedFrameError (FrameError), with ``frame`` = ``i``, where this view
        of the frame cannot be used.
        """
        source = self._source(cam)
        index = self.source_index(cam, i)
        try:
            return self.cache.get((source.name, index), lambda: source.read(index))
        except FrameError as err:
            err.frame = int(i)
            raise

    def frame(self, cam: str | int, i: int) -> np.ndarray:
        """Frame ``i`` of ``cam``: [H, W, 3] float32 RGB in [0, 1] (a new array; grey frames repeated to RGB)."""
        return to_float(self.frame_raw(cam, i))

    def frames(self, i: int) -> list[np.ndarray]:
        """Frame ``i`` of every camera, in ``camera_names`` order, each [H, W, 3] float32 in [0, 1]."""
        return [self.frame(c, i) for c in range(len(self._sources))]

    def close(self) -> None:
        """Stop video decoders and drop cached frames."""
        for source in self._sources:
            source.close()
        self.cache.clear()

    def __enter__(self) -> "Take":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Take({str(self.path)!r}, cameras={self.camera_names}, frames={self.num_frames}, "
                f"range={list(self.frame_range)}, fps={self.fps})")


def _resolve_range(path: Path, sources: list[FrameSource], info: TakeInfo) -> tuple[int, int]:
    """The take's frame range: take.json's (checked against every camera) or the frames all cameras share."""
    spans = {s.name: (-info.frame_offsets.get(s.name, 0), s.count - info.frame_offsets.get(s.name, 0))
             for s in sources}
    listing = ", ".join(f"{s.name} {s.count} frames" + (f" (offset {info.frame_offsets[s.name]})"
                                                        if info.frame_offsets.get(s.name) else "") for s in sources)
    if info.frame_range is not None:
        start, stop = info.frame_range
        short = [n for n, (lo, hi) in spans.items() if lo > start or hi < stop]
        if short:
            raise FacecapError(f"take {path}: frame_range [{start}, {stop}) is not covered by camera(s) "
                               f"{', '.join(short)}; cameras have: {listing}")
        return start, stop
    if len(set(spans.values())) > 1:
        raise FacecapError(f"take {path}: cameras have unequal frame counts: {listing}. Set 'frame_range' "
                           "(and 'frame_offset' per camera) in take.json to choose the frames they share")
    lo, hi = next(iter(spans.values()))
    if hi <= max(lo, 0):
        raise FacecapError(f"take {path}: no frames after applying frame offsets ({listing})")
    return max(lo, 0), hi


def _select_cameras(path: Path, found: dict[str, Path], info: TakeInfo, calibration: Calibration | None,
                    cameras: Sequence[str] | None) -> dict[str, Path]:
    """The take's cameras to use, checked against the calibration and the user's list (see open_take)."""
    if cameras is not None:
        cameras = list(dict.fromkeys(cameras))
        if not cameras:
            raise FacecapError(f"take {path}: the list of cameras to use is empty")
        absent = [n for n in cameras if n not in found]
        if absent:
            raise FacecapError(f"take {path}: camera(s) {', '.join(absent)} to use have no frames in the take "
                               f"(no folder or video, or an empty folder); the take has: {', '.join(found)}")
        found = {n: found[n] for n in cameras}
    listed = None if info.cameras is None else set(info.cameras)
    unknown = sorted(set(info.frame_offsets) - set(found)) if cameras is None else []
    if unknown:
        raise FormatError(f"{path / 'take.json'}: camera(s) {', '.join(unknown)} not in the take "
                          f"(cameras: {', '.join(found)})")
    if calibration is None:
        return found
    extra = [n for n in found if n not in calibration.names]
    if extra:
        raise FacecapError(f"take {path}: camera(s) {', '.join(extra)} missing from the calibration "
                           f"(calibrated: {', '.join(calibration.names)})")
    if cameras is None:
        absent = [n for n in calibration.names if n not in found and (listed is None or n in listed)]
        if absent:
            raise FacecapError(f"take {path}: camera(s) {', '.join(absent)} of the calibration have no frames in the "
                               f"take (no folder or video, or an empty folder). To fit without them, list the "
                               f"cameras to use (the fit's config key 'cameras', or take.json's 'cameras')")
    return {n: found[n] for n in calibration.names if n in found}


def open_take(path: str | Path, calibration: Calibration | None = None,
              cache_frames: int = DEFAULT_CACHE_FRAMES, cameras: Sequence[str] | None = None,
              frames: tuple[int, int | None] | None = None) -> Take:
    """Open a take folder for streaming reads.

    Args:
        path: the take folder (camera frame folders and/or videos, optional take.json).
        calibration: when given, every camera used must be in it, and every camera of it must be in
            the take unless ``cameras`` or take.json's 'cameras' leave it out; cameras then follow its
            order and ``take.calibration`` is the calibration of the cameras used.
        cache_frames: how many decoded frames (all cameras together) the LRU cache keeps.
        cameras: the cameras to use; the take's others are left out. Default: all of them.
        frames: (start, stop) to read only frames start..stop-1 of the take (stop None: to its end), counted
            from its frame range's start; the take's frame indices then start at 0 there.
    Raises:
        FacecapError: folder missing, no cameras, a camera absent from the take or the calibration,
            unequal frame counts, an unreadable file (each message names the camera or file).
    """
    path = Path(path)
    cache = FrameCache(cache_frames)
    if not path.is_dir():
        raise FacecapError(f"take folder not found: {path}")
    info = read_take_json(path / "take.json")
    found = _find_sources(path)
    if not found:
        raise FacecapError(f"take {path}: no cameras found (expected one folder of {'/'.join(IMAGE_SUFFIXES)} "
                           f"frames or one {'/'.join(VIDEO_SUFFIXES)} video per camera)")
    found = _select_cameras(path, found, info, calibration, cameras)
    if calibration is not None:
        calibration = calibration.subset(list(found))
    sources: list[FrameSource] = []
    try:
        for name, entry in found.items():
            sources.append(FolderSource(name, entry) if entry.is_dir() else VideoSource(name, entry))
        if calibration is not None:
            for s in sources:
                if tuple(s.image_size) != tuple(calibration[s.name].image_size):
                    raise FacecapError(f"take {path}: camera '{s.name}' frames are {s.image_size[0]}x"
                                       f"{s.image_size[1]} but the calibration says {calibration[s.name].width}x"
                                       f"{calibration[s.name].height}")
        frame_range = _resolve_range(path, sources, info)
    except FacecapError:
        for s in sources:
            s.close()
        raise
    first = 0
    if frames is not None:
        first, frame_range = _part(path, frame_range, frames)
    take = Take(path, sources, info, frame_range, calibration, cache, first)
    log.info("opened %r", take)
    return take


def _part(path: Path, frame_range: tuple[int, int], frames: tuple[int, int | None]) -> tuple[int, tuple[int, int]]:
    """(first frame, frame range) of the part [start, stop) of a take (stop None: to the end)."""
    total = frame_range[1] - frame_range[0]
    start, stop = frames[0], total if frames[1] is None else frames[1]
    if not 0 <= start < stop <= total:
        raise FacecapError(f"take {path}: frames {start}:{stop} are not a part of its {total} frames (0:{total})")
    return start, (frame_range[0] + start, frame_range[0] + stop)
