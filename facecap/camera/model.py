"""Pinhole cameras with OpenCV distortion, and the calibration.json format (docs/formats.md §1)."""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecap.errors import FormatError
from facecap.units import UNITS_IN_MM, unit_scale

__all__ = ["Camera", "Calibration", "load_calibration", "save_calibration", "OPENCV_DIST_LENGTHS"]

log = logging.getLogger(__name__)

CALIBRATION_FORMAT = "facecap-calibration"
CALIBRATION_VERSION = 1
OPENCV_DIST_LENGTHS = (4, 5, 8, 12, 14)


@dataclass(frozen=True)
class Camera:
    """One calibrated camera, OpenCV conventions (x right, y down, z forward; pixel centres at integers).

    Attributes:
        name: free text, matching the take's folder or video name.
        image_size: (width, height) in pixels.
        K: [3, 3] intrinsics. dist: [D] OpenCV coefficients, D in (0, 4, 5, 8, 12, 14).
        R, t: [3, 3] and [3] world-to-camera, ``x_cam = R @ X_world + t``, in the calibration's units.
    """

    name: str
    image_size: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray

    def __post_init__(self) -> None:
        where = f"camera '{self.name}'"
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise FormatError(f"{where}: image_size must be [width, height] > 0, got {list(self.image_size)}")
        for key, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = getattr(self, key)
            if value.shape != shape or not np.isfinite(value).all():
                raise FormatError(f"{where}: {key} must be finite with shape {list(shape)}, got {value.tolist()}")
        if len(self.dist) not in (0, *OPENCV_DIST_LENGTHS):
            raise FormatError(f"{where}: dist must have 4, 5, 8, 12 or 14 coefficients, got {len(self.dist)}")
        if abs(np.linalg.det(self.R) - 1) > 1e-4 or np.abs(self.R @ self.R.T - np.eye(3)).max() > 1e-4:
            raise FormatError(f"{where}: R is not a rotation matrix (det {np.linalg.det(self.R):.6f})")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise FormatError(f"{where}: focal lengths in K must be positive")

    @property
    def width(self) -> int:
        return int(self.image_size[0])

    @property
    def height(self) -> int:
        return int(self.image_size[1])

    @property
    def center(self) -> np.ndarray:
        """[3] camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    def dist14(self) -> np.ndarray:
        """[14] distortion coefficients padded with zeros, OpenCV's full order."""
        out = np.zeros(14)
        out[: len(self.dist)] = self.dist
        return out

    def scaled(self, s: float) -> "Camera":
        """The same camera in a world whose lengths are multiplied by ``s`` (only t changes)."""
        return Camera(self.name, self.image_size, self.K, self.dist, self.R, self.t * s)


@dataclass(frozen=True)
class Calibration:
    """A calibrated rig: cameras in a shared world frame.

    Attributes:
        units: length unit of every camera's t ("mm", "cm" or "m").
        cameras: cameras in file order.
        rms_px: reprojection RMS of the calibration, informational.
        extra: every other top-level key of the file (board, reports), kept on save.
    """

    units: str
    cameras: tuple[Camera, ...]
    rms_px: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.units not in UNITS_IN_MM:
            raise FormatError(f"calibration units must be one of {', '.join(UNITS_IN_MM)}, got {self.units!r}")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise FormatError(f"calibration camera names must be unique, got {names}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def __getitem__(self, name: str) -> Camera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"no camera {name!r} in the calibration; cameras: {', '.join(self.names)}")

    def in_units(self, units: str) -> "Calibration":
        """The same rig with translations converted to ``units``."""
        s = unit_scale(self.units, units)
        return Calibration(units, tuple(c.scaled(s) for c in self.cameras), self.rms_px, self.extra)

    def subset(self, names: list[str]) -> "Calibration":
        """Only the named cameras, in that order."""
        return Calibration(self.units, tuple(self[n] for n in names), self.rms_px, self.extra)


def _array(value: Any, where: str, key: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise FormatError(f"{where}: '{key}' is not numeric ({err})") from err


def _image_size(value: Any, where: str) -> tuple[int, int]:
    """[width, height] in whole pixels (integral floats accepted)."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in value)
    if not ok:
        raise FormatError(f"{where}: 'image_size' must be [width, height] in whole pixels, got {value!r}")
    return int(value[0]), int(value[1])


def calibration_from_dict(data: dict[str, Any], source: str = "calibration") -> Calibration:
    """Parse the calibration.json structure; errors name ``source``, the camera and the key."""
    if not isinstance(data, dict):
        raise FormatError(f"{source}: must hold a JSON object with keys 'format', 'version', 'units' and "
                          f"'cameras', got a {type(data).__name__}")
    if data.get("format") != CALIBRATION_FORMAT:
        raise FormatError(f"{source}: 'format' must be {CALIBRATION_FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != CALIBRATION_VERSION:
        raise FormatError(f"{source}: 'version' must be {CALIBRATION_VERSION}, got {data.get('version')!r}")
    cams_in = data.get("cameras")
    if not isinstance(cams_in, dict) or not cams_in:
        raise FormatError(f"{source}: 'cameras' must be a non-empty mapping of name to camera")
    cameras = []
    for name, cam in cams_in.items():
        where = f"{source}: camera '{name}'"
        if not isinstance(cam, dict):
            raise FormatError(f"{where}: must be an object with keys image_size, K, dist, R, t; got {cam!r}")
        missing = [k for k in ("image_size", "K", "dist", "R", "t") if k not in cam]
        if missing:
            raise FormatError(f"{where}: key '{missing[0]}' is missing")
        try:
            inside = f"camera '{name}'"                   # the handler below puts ``source`` in front
            cameras.append(Camera(name=str(name), image_size=_image_size(cam["image_size"], inside),
                                  K=_array(cam["K"], inside, "K"), dist=_array(cam["dist"], inside, "dist").ravel(),
                                  R=_array(cam["R"], inside, "R"), t=_array(cam["t"], inside, "t").ravel()))
        except FormatError as err:
            raise FormatError(f"{source}: {err}") from err
    extra = {k: v for k, v in data.items() if k not in ("format", "version", "units", "cameras", "rms_px")}
    rms = data.get("rms_px")
    if rms is not None and (not isinstance(rms, (int, float)) or isinstance(rms, bool)):
        raise FormatError(f"{source}: 'rms_px' must be a number, got {rms!r}")
    return Calibration(units=data.get("units", "mm"), cameras=tuple(cameras),
                       rms_px=None if rms is None else float(rms), extra=extra)


def load_calibration(path: str | Path) -> Calibration:
    """Read calibration.json; a missing file, bad JSON or a broken camera raises FormatError."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"calibration file not found: {path}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise FormatError(f"{path}: cannot be read ({err.strerror})") from err
    return calibration_from_dict(data, str(path))


def calibration_to_dict(calib: Calibration) -> dict[str, Any]:
    """The calibration.json structure of ``calib``."""
    cameras = {c.name: {"image_size": [c.width, c.height], "K": c.K.tolist(), "dist": c.dist.tolist(),
                        "R": c.R.tolist(), "t": c.t.tolist()} for c in calib.cameras}
    data: dict[str, Any] = {"format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, "units": calib.units,
                            "cameras": cameras}
    if calib.rms_px is not None:
        data["rms_px"] = calib.rms_px
    data.update(calib.extra)
    return data


def save_calibration(calib: Calibration, path: str | Path) -> None:
    """Write calibration.json atomically (a temporary file renamed), so no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(calibration_to_dict(calib), indent=1))
    tmp.replace(path)
    log.info("wrote %s (%d cameras)", path, len(calib.cameras))
