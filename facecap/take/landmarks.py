"""2D face landmarks per camera and frame: the Landmarks2D container, its JSON file, and detection.

File format ``facecap-landmarks`` v1 (JSON, docs/formats.md §7), which also reads ``facecap-landmarks-gt``:
``{"format": "facecap-landmarks", "version": 1, "scheme": "multipie68", "frames": [0, 1, ...],
"cameras": {name: {"points": [F][L][2] px, "visible": [F][L] bool, "confidence": [F][L] in [0, 1]}}}``.
Pixels follow docs/formats.md (top-left pixel centre at (0, 0), distorted image coordinates).
``frames`` (optional) are take frame indices counted from the take's frame_range start.
A point that is not a finite number (NaN, JSON null, inf) or lies beyond ±MAX_ABS_PX is a missing point
(confidence 0), whatever ``visible`` says.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facecap.checks import check_shape
from facecap.errors import FacecapError, FormatError, FrameError
from facecap.progress import progress
from facecap.take.mediapipe_detector import (MEDIAPIPE_TO_MULTIPIE68, MULTIPIE68_CONFIDENCE, MediaPipeFaceDetector,
                                             check_model, mediapipe_to_multipie68, model_sha256)
from facecap.take.reader import Take

__all__ = ["Landmarks2D", "save_landmarks", "load_landmarks", "detect_landmarks", "as_uint8", "LANDMARKS_FORMAT",
           "SCHEME_SIZES"]

log = logging.getLogger(__name__)

LANDMARKS_FORMAT = "facecap-landmarks"
LANDMARKS_GT_FORMAT = "facecap-landmarks-gt"
LANDMARKS_VERSION = 1
SCHEME_SIZES = {"multipie68": 68}
# Bump when detection or the 68-point table changes, so cached results from older code are not reused.
DETECTOR_CACHE_VERSION = 1
JSON_DECIMALS = 3  # 1/1000 px is far below any detector's accuracy
MAX_ABS_PX = 1e6  # no camera is a million pixels across: a coordinate beyond this is garbage, not a point


@dataclass(frozen=True)
class Landmarks2D:
    """Landmarks of every camera and frame.

    Attributes:
        points: [T, C, L, 2] float32 px, distorted image coordinates, pixel centres at integers (float32 holds
            the files' thousandths of a pixel exactly up to 8192 px, in half the memory of a long take).
        confidence: [T, C, L] float32 in [0, 1]; 0 = missing (no detection, not visible); points are
            then meaningless. A point that is not finite or lies beyond ±MAX_ABS_PX, or whose confidence
            is not finite, is made missing (confidence 0, point 0) with a warning.
        camera_names: C names, matching the calibration.
        scheme: landmark layout, "multipie68" (the rig's ``landmark_scheme``).
        frames: [T] int take frame indices (from the frame_range start), or None for 0..T-1.
    """

    points: np.ndarray
    confidence: np.ndarray
    camera_names: tuple[str, ...]
    scheme: str = "multipie68"
    frames: np.ndarray | None = None

    def __post_init__(self) -> None:
        with np.errstate(over="ignore"):            # absurd magnitudes become inf, then missing points
            object.__setattr__(self, "points", np.asarray(self.points, dtype=np.float32))
            object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32))
        object.__setattr__(self, "camera_names", tuple(self.camera_names))
        dims = check_shape(self.points, "T C L 2", "landmark points")
        check_shape(self.confidence, f"{dims['T']} {dims['C']} {dims['L']}", "landmark confidence")
        if len(self.camera_names) != dims["C"]:
            raise FacecapError(f"{len(self.camera_names)} camera names for {dims['C']} cameras of landmarks")
        if self.scheme in SCHEME_SIZES and SCHEME_SIZES[self.scheme] != dims["L"]:
            raise FacecapError(f"scheme {self.scheme} has {SCHEME_SIZES[self.scheme]} landmarks, got {dims['L']}")
        self._drop_non_finite()
        if self.confidence.min(initial=0) < 0 or self.confidence.max(initial=0) > 1:
            raise FacecapError("landmark confidence must lie in [0, 1]")
        if self.frames is not None:
            frames = np.asarray(self.frames, dtype=np.int64)
            check_shape(frames, str(dims["T"]), "landmark frames")
            object.__setattr__(self, "frames", frames)

    def _drop_non_finite(self) -> None:
        """Points that are not finite or beyond ±MAX_ABS_PX, and non-finite confidences, become missing."""
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(self.points) <= MAX_ABS_PX).all(-1) | ~np.isfinite(self.confidence)
        if not bad.any():
            return
        camera = np.nonzero(bad.any((0, 2)))[0]
        log.warning("%d landmark points are NaN, null, inf or beyond ±%g px (cameras %s): they are missing points",
                    int(bad.sum()), MAX_ABS_PX, ", ".join(self.camera_names[c] for c in camera))
        object.__setattr__(self, "points", np.where(bad[..., None], 0.0, self.points))
        object.__setattr__(self, "confidence", np.where(bad, 0.0, self.confidence))

    @property
    def num_frames(self) -> int:
        return self.points.shape[0]

    @property
    def frame_numbers(self) -> np.ndarray:
        """[T] int take frame indices (``frames`` or 0..T-1)."""
        return np.arange(self.num_frames) if self.frames is None else self.frames

    def cameras(self, names: Sequence[str]) -> "Landmarks2D":
        """The named cameras only, in that order (e.g. a calibration's order)."""
        missing = [n for n in names if n not in self.camera_names]
        if missing:
            raise FacecapError(f"landmarks lack camera(s) {', '.join(missing)}; have {', '.join(self.camera_names)}")
        idx = [self.camera_names.index(n) for n in names]
        return Landmarks2D(self.points[:, idx], self.confidence[:, idx], tuple(names), self.scheme, self.frames)

    def for_take(self, num_frames: int, source: str = "landmarks", first_frame: int = 0) -> "Landmarks2D":
        """Row t is take frame ``first_frame`` + t, for t < ``num_frames`` (a part of a take starts at
        ``first_frame``): a file's ``frames`` place its rows; take frames it lacks get no landmarks (the fit
        interpolates them) and its frames beyond the take are dropped, each said in the log. Raises
        FormatError when it has none of the take's frames."""
        numbers = self.frame_numbers - first_frame
        inside = (numbers >= 0) & (numbers < num_frames)
        if not inside.any():
            raise FormatError(f"{source}: its frames ({numbers.min()}..{numbers.max()}) are none of the take's "
                              f"{num_frames} (frame numbers count from the take's frame_range start)")
        if not inside.all():
            log.warning("%s: %d of its frames lie outside the take's %d frames and are ignored", source,
                        int((~inside).sum()), num_frames)
        points = np.zeros((num_frames, *self.points.shape[1:]))
        confidence = np.zeros((num_frames, *self.confidence.shape[1:]))
        points[numbers[inside]] = self.points[inside]
        confidence[numbers[inside]] = self.confidence[inside]
        lacking = num_frames - len(np.unique(numbers[inside]))
        if lacking:
            log.warning("%s: no landmarks for %d of the take's %d frames; they are interpolated", source, lacking,
                        num_frames)
        return Landmarks2D(points, confidence, self.camera_names, self.scheme)


def save_landmarks(landmarks: Landmarks2D, path: str | Path) -> None:
    """Write ``facecap-landmarks`` v1 JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cameras = {}
    for c, name in enumerate(landmarks.camera_names):
        conf = landmarks.confidence[:, c]
        cameras[name] = {"points": np.round(landmarks.points[:, c], JSON_DECIMALS).tolist(),
                         "visible": (conf > 0).tolist(), "confidence": np.round(conf, JSON_DECIMALS).tolist()}
    data = {"format": LANDMARKS_FORMAT, "version": LANDMARKS_VERSION, "scheme": landmarks.scheme,
            "frames": landmarks.frame_numbers.tolist(), "cameras": cameras}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(path)
    log.info("wrote %s (%d frames, %d cameras)", path, landmarks.num_frames, len(cameras))


def _camera_arrays(path: Path, name: str, cam: Any) -> tuple[np.ndarray, np.ndarray]:
    where = f"{path}: cameras.{name}"
    if not isinstance(cam, dict) or "points" not in cam:
        raise FormatError(f"{where}: key 'points' is missing")
    try:
        points = np.asarray(cam["points"], dtype=np.float64)
        visible = np.asarray(cam.get("visible", np.ones(points.shape[:2], bool)), dtype=bool)
        conf = np.asarray(cam.get("confidence", np.ones(points.shape[:2])), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise FormatError(f"{where}: points/visible/confidence are not rectangular numeric arrays ({err})") from err
    if points.ndim != 3 or points.shape[2] != 2:
        raise FormatError(f"{where}.points must be [frames][landmarks][2], got shape {list(points.shape)}")
    for key, arr in (("visible", visible), ("confidence", conf)):
        if arr.shape != points.shape[:2]:
            raise FormatError(f"{where}.{key} must be [frames][landmarks] = {list(points.shape[:2])}, "
                              f"got {list(arr.shape)}")
    return points, np.where(visible, conf, 0.0)


def load_landmarks(path: str | Path) -> Landmarks2D:
    """Read ``facecap-landmarks`` v1 or ``facecap-landmarks-gt`` v1 JSON (visible false -> confidence 0)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"landmarks file not found: {path}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise FormatError(f"{path}: cannot be read ({err.strerror})") from err
    if not isinstance(data, dict):
        raise FormatError(f"{path}: must hold a JSON object with keys 'format', 'version' and 'cameras', got a "
                          f"{type(data).__name__}")
    if data.get("format") not in (LANDMARKS_FORMAT, LANDMARKS_GT_FORMAT):
        raise FormatError(f"{path}: 'format' must be {LANDMARKS_FORMAT!r} or {LANDMARKS_GT_FORMAT!r}, "
                          f"got {data.get('format')!r}")
    if data.get("version") != LANDMARKS_VERSION:
        raise FormatError(f"{path}: 'version' must be {LANDMARKS_VERSION}, got {data.get('version')!r}")
    cams = data.get("cameras")
    if not isinstance(cams, dict) or not cams:
        raise FormatError(f"{path}: 'cameras' must be a non-empty mapping of name to landmarks")
    arrays = {name: _camera_arrays(path, name, cam) for name, cam in cams.items()}
    shapes = {name: p.shape[:2] for name, (p, _) in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise FormatError(f"{path}: cameras differ in [frames, landmarks]: "
                          + ", ".join(f"{n} {list(s)}" for n, s in shapes.items()))
    points = np.stack([p for p, _ in arrays.values()], axis=1)
    conf = np.stack([c for _, c in arrays.values()], axis=1)
    if (conf < 0).any() or (conf > 1).any():
        raise FormatError(f"{path}: 'confidence' values must lie in [0, 1]")
    scheme = data.get("scheme", "multipie68")
    frames = data.get("frames")
    if frames is not None and not (isinstance(frames, list) and all(isinstance(f, int) and not isinstance(f, bool)
                                                                     for f in frames)):
        raise FormatError(f"{path}: 'frames' must be a list of integer frame indices")
    try:
        return Landmarks2D(points, conf, tuple(cams), scheme, frames)
    except FacecapError as err:
        raise FormatError(f"{path}: {err}") from err


def as_uint8(frame: np.ndarray) -> np.ndarray:
    """A stored frame as 8-bit RGB (what MediaPipe and the learned initialiser take)."""
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        return (frame >> 8).astype(np.uint8)
    return np.round(np.clip(frame, 0.0, 1.0) * 255).astype(np.uint8)


def _cache_file(cache_dir: Path, take: Take, cam: str, indices: np.ndarray, model_hash: str,
                settings: dict[str, float]) -> Path:
    """Where one camera's detections are cached; the name hashes everything that changes the result."""
    source = take.source_path(cam)
    stat = source.stat()
    key = json.dumps({"take": str(take.path.resolve()), "camera": cam, "source": str(source.resolve()),
                      "source_stat": [stat.st_size, stat.st_mtime_ns], "file_frames": indices.tolist(),
                      "model": model_hash, "table": MEDIAPIPE_TO_MULTIPIE68, "settings": settings,
                      "version": DETECTOR_CACHE_VERSION}, sort_keys=True)
    return cache_dir / f"landmarks_{cam}_{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def detect_landmarks(take: Take, model_path: str | Path, cache_dir: str | Path | None = None,
                     frames: Sequence[int] | None = None, min_detection_confidence: float = 0.5) -> Landmarks2D:
    """Detect the Multi-PIE 68 landmarks in every view and frame with MediaPipe's Face Landmarker.

    Args:
        take: an open take. model_path: a local ``face_landmarker.task`` (never downloaded).
        cache_dir: where per-camera results are cached as npz, keyed by take, camera, source file,
            frames, model hash and detector settings; a rerun with the same inputs reads them back.
        frames: take frame indices to detect (default all).
        min_detection_confidence: MediaPipe's face detection threshold.
    Returns:
        Landmarks2D with confidence MULTIPIE68_CONFIDENCE where a face was found (jaw 0.5), 0 where not
        or where a point falls outside the image.
    """
    frame_idx = np.arange(take.num_frames) if frames is None else np.asarray(list(frames), dtype=np.int64)
    model_path = check_model(model_path)
    settings = {"min_detection_confidence": float(min_detection_confidence)}
    detector = None
    T, C = len(frame_idx), len(take.camera_names)
    points = np.zeros((T, C, 68, 2))
    found = np.zeros((T, C), dtype=bool)
    model_hash = model_sha256(model_path)
    try:
        with progress(T * C, "landmarks", "img") as bar:
            for c, cam in enumerate(take.camera_names):
                indices = np.array([take.source_index(cam, int(i)) for i in frame_idx], dtype=np.int64)
                cache = None if cache_dir is None else _cache_file(Path(cache_dir), take, cam, indices,
                                                                   model_hash, settings)
                if cache is not None and cache.is_file():
                    with np.load(cache) as data:
                        points[:, c], found[:, c] = data["points"], data["found"]
                    bar.update(T)
                    log.info("camera %s: landmarks read from cache %s", cam, cache)
                    continue
                if detector is None:
                    detector = MediaPipeFaceDetector(model_path, min_detection_confidence)
                for t, i in enumerate(frame_idx):
                    try:
                        mesh = detector.detect(as_uint8(take.frame_raw(cam, int(i))))
                    except FrameError as err:           # that view has no landmarks; the fit leaves it out
                        log.warning("no landmarks: %s", err)
                        mesh = None
                    if mesh is not None:
                        points[t, c], found[t, c] = mediapipe_to_multipie68(mesh[:, :2]), True
                    bar.update(1)
                if cache is not None:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(cache, points=points[:, c], found=found[:, c])
    finally:
        if detector is not None:
            detector.close()
    sizes = np.array([take.image_size(cam) for cam in take.camera_names], dtype=np.float64)  # [C, 2] (w, h)
    inside = ((points >= -0.5) & (points <= sizes[None, :, None, :] - 0.5)).all(axis=-1)
    confidence = np.where(found[..., None] & inside, MULTIPIE68_CONFIDENCE, 0.0)
    missed = int((~found).sum())
    if missed:
        log.warning("no face found in %d of %d images", missed, T * C)
    return Landmarks2D(np.where(confidence[..., None] > 0, points, 0.0), confidence, tuple(take.camera_names),
                       "multipie68", frame_idx)
