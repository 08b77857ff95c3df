"""Generated camera rigs for synthetic takes: a ring of cameras in front of a head."""

import math

import numpy as np

from facecap.camera.model import Calibration, Camera
from facecap.errors import ConfigError

__all__ = ["look_at", "make_camera_ring"]

# Elevation alternates by this fraction of the given elevation so neighbouring views differ vertically too.
ELEVATION_ALTERNATION = 0.5


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])
            ) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R [3, 3], t [3]) of an OpenCV camera (x right, y down, z forward) at ``centre``
    looking at ``target``, with world ``up`` appearing upwards in the image."""
    z = np.asarray(target, float) - np.asarray(centre, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ConfigError("camera looks along the up axis; choose another elevation")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)                    # = -up projected: image y grows downwards
    R = np.stack([x, y, z])
    return R, -R @ np.asarray(centre, float)


def make_camera_ring(n: int, image_size: tuple[int, int] = (320, 240), distance: float = 600.0,
                     focal: float | None = None, target: np.ndarray | tuple = (0.0, 0.0, 0.0),
                     arc_deg: float = 100.0, elevation_deg: float = 8.0,
                     dist: tuple[float, ...] = (-0.05, 0.02, 0.0, 0.0, 0.0), units: str = "mm",
                     fov_deg: float = 24.0) -> Calibration:
    """``n`` cameras on an arc around ``target`` (world y up, the face looking along +z).

    Args:
        n: number of cameras, named cam00, cam01, ...
        image_size: (width, height) px. distance: from target, in ``units``.
        focal: focal length in px; None sets it from ``fov_deg``, the vertical field of view.
        arc_deg: azimuth span, centred on +z. elevation_deg: camera height angle, alternating
            between full and half of it so the views are not coplanar.
        dist: OpenCV distortion of every camera (principal point at the image centre).
    """
    if n < 1:
        raise ConfigError(f"a camera ring needs at least 1 camera, got {n}")
    if distance <= 0:
        raise ConfigError(f"camera distance must be positive, got {distance}")
    W, H = image_size
    f = focal if focal is not None else 0.5 * H / math.tan(math.radians(fov_deg) / 2)
    K = np.array([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
    target = np.asarray(target, dtype=float)
    azimuths = np.radians(np.linspace(-arc_deg / 2, arc_deg / 2, n) if n > 1 else np.zeros(1))
    cams = []
    for i, az in enumerate(azimuths):
        el = math.radians(elevation_deg * (1.0 if i % 2 == 0 else ELEVATION_ALTERNATION))
        centre = target + distance * np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        R, t = look_at(centre, target)
        cams.append(Camera(f"cam{i:02d}", (int(W), int(H)), K.copy(), np.asarray(dist, float), R, t))
    return Calibration(units, tuple(cams), extra={"generator": "facecap.synth.make_camera_ring"})
