"""Streamed board detection over every camera's frames: keep only the corners, report every image."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facecap.calibrate.boards import Board, make_detector
from facecap.calibrate.sources import CameraSource
from facecap.errors import FacecapError
from facecap.progress import progress

__all__ = ["ViewDetection", "Detections", "detect_sources", "draw_detection"]

log = logging.getLogger(__name__)

OVERLAY_MAX_WIDTH = 1600  # overlays of large images are scaled down to this width


@dataclass(frozen=True)
class ViewDetection:
    """The board in one camera's frame: ``ids`` [n] int64, ``corners`` [n, 2] float64 px (empty when not found)."""

    camera: str
    key: str
    label: str
    ids: np.ndarray
    corners: np.ndarray

    @property
    def found(self) -> bool:
        return len(self.ids) > 0


@dataclass
class Detections:
    """All detections of a calibration run.

    Attributes:
        cameras: camera names in source order. image_sizes: camera -> (width, height) px.
        views: every frame, found or not, in source order.
    """

    board: Board
    cameras: list[str]
    image_sizes: dict[str, tuple[int, int]]
    views: list[ViewDetection] = field(default_factory=list)

    def found(self, camera: str | None = None) -> list[ViewDetection]:
        return [v for v in self.views if v.found and (camera is None or v.camera == camera)]


def draw_detection(gray: np.ndarray, view: ViewDetection, board: Board) -> np.ndarray:
    """[H', W', 3] uint8 BGR overlay of the detected points (ids and order), scaled to at most OVERLAY_MAX_WIDTH."""
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    if view.found:
        pts = view.corners.reshape(-1, 1, 2).astype(np.float32)
        if board.type == "charuco":
            cv2.aruco.drawDetectedCornersCharuco(image, pts, view.ids.reshape(-1, 1).astype(np.int32))
        else:
            cv2.drawChessboardCorners(image, board.pattern_size, pts, True)
    else:
        cv2.putText(image, "board not found", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 255), 2)
    scale = min(1.0, OVERLAY_MAX_WIDTH / image.shape[1])
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def detect_sources(sources: list[CameraSource], board: Board, half_window: int | None = None,
                   overlay_dir: Path | None = None, overlays: int = 3) -> Detections:
    """Detect ``board`` in every frame of every source, one frame in memory at a time.

    Overlays of the first ``overlays`` frames of each camera (all with -1) go to ``overlay_dir``.
    Raises FacecapError when a camera's frames differ in size.
    """
    detector = make_detector(board, half_window)
    result = Detections(board, [s.name for s in sources], {})
    total = sum(len(s.keys) for s in sources)
    with progress(total, "detecting board", "img") as bar:
        for source in sources:
            for i, (key, label, gray) in enumerate(source.frames()):
                size = (gray.shape[1], gray.shape[0])
                first = result.image_sizes.setdefault(source.name, size)
                if size != first:
                    raise FacecapError(f"camera '{source.name}': {label} is {size[0]}x{size[1]} but its first "
                                       f"image is {first[0]}x{first[1]}; one camera's images must share one size")
                found = detector(gray)
                view = ViewDetection(source.name, key, label,
                                     found.ids if found else np.zeros(0, np.int64),
                                     found.corners if found else np.zeros((0, 2)))
                result.views.append(view)
                log.debug("%s %s: %s", source.name, label, f"{len(view.ids)} points" if found else "no board")
                if overlay_dir is not None and (overlays < 0 or i < overlays):
                    overlay_dir.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(overlay_dir / f"{source.name}_{key}.png"), draw_detection(gray, view, board))
                bar.update(1)
    for name in result.cameras:
        n_all = sum(v.camera == name for v in result.views)
        log.info("camera %s: board found in %d of %d images", name, len(result.found(name)), n_all)
    return result
