"""Per-camera intrinsics from board views: cv2.calibrateCameraExtended (Zhang 2000, Bouguet's toolbox)."""

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from facecap.calibrate.boards import Board
from facecap.calibrate.config import IntrinsicsConfig
from facecap.calibrate.detect import ViewDetection
from facecap.errors import FacecapError

__all__ = ["Intrinsics", "calibrate_intrinsics", "calibration_flags", "DIST_LENGTH"]

log = logging.getLogger(__name__)

DIST_LENGTH = {"k5": 5, "rational8": 8}


@dataclass(frozen=True)
class Intrinsics:
    """One camera's calibrateCamera result.

    Attributes:
        K: [3, 3] float64. dist: [5 or 8] float64, OpenCV order.
        rms_px: OpenCV's RMS over all points. view_rms_px: [V] RMS per view (OpenCV's perViewErrors).
        rvecs, tvecs: [V, 3] board-to-camera poses (Rodrigues, board units).
    """

    K: np.ndarray
    dist: np.ndarray
    rms_px: float
    view_rms_px: np.ndarray
    rvecs: np.ndarray
    tvecs: np.ndarray


def calibration_flags(config: IntrinsicsConfig) -> int:
    """OpenCV calibrateCamera flags of a lens model."""
    flags = cv2.CALIB_RATIONAL_MODEL if config.distortion == "rational8" else 0
    if config.fix_aspect:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    if config.zero_tangential:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    return flags


def calibrate_intrinsics(views: list[ViewDetection], board: Board, image_size: tuple[int, int],
                         config: IntrinsicsConfig, camera: str = "") -> Intrinsics:
    """K and dist of one camera from its views with the board (``image_size`` is (width, height) px).

    With ``fix_aspect`` the ratio fx / fy is held at 1, as OpenCV's calibration sample does with ``-a 1``.
    """
    if len(views) < config.min_views:
        name = views[0].camera if views else camera
        raise FacecapError(f"camera '{name}': board found in {len(views)} images, need at least "
                           f"{config.min_views} (intrinsics.min_views)")
    obj = board.object_points()
    object_points = [obj[v.ids].astype(np.float32) for v in views]
    image_points = [v.corners.reshape(-1, 1, 2).astype(np.float32) for v in views]
    try:
        rms, K, dist, rvecs, tvecs, _, _, per_view = cv2.calibrateCameraExtended(
            object_points, image_points, tuple(image_size), np.eye(3), None, flags=calibration_flags(config))
    except cv2.error as err:
        raise FacecapError(f"camera '{views[0].camera}': OpenCV calibrateCamera failed ({err.err})") from err
    dist = dist.ravel()[:DIST_LENGTH[config.distortion]]
    log.info("camera %s: intrinsics RMS %.3f px over %d views, fx %.1f fy %.1f cx %.1f cy %.1f", views[0].camera,
             rms, len(views), K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    return Intrinsics(K, dist, float(rms), per_view.ravel().astype(np.float64),
                      np.array(rvecs, dtype=np.float64).reshape(-1, 3),
                      np.array(tvecs, dtype=np.float64).reshape(-1, 3))
