"""Calibration boards: their geometry, presets by name, and detection in one grey image.

A board's points live in the board frame (x along ``cols``, y along ``rows``, z = 0), in the
board's ``units``; a detection returns the ids of the points it found and their pixel positions
(OpenCV pixel centres at integer coordinates).
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import yaml

from facecap.errors import ConfigError
from facecap.units import UNITS_IN_MM

__all__ = ["Board", "BoardDetection", "BOARD_DIR", "board_presets", "load_board", "parse_board_spec", "board_from_dict",
           "detect_board", "make_detector", "subpix_half_window"]

log = logging.getLogger(__name__)

BoardType = Literal["chessboard", "circles", "acircles", "charuco"]
BOARD_TYPES = ("chessboard", "circles", "acircles", "charuco")

# Presets ship beside the package in the repo (calibration/boards/*.yaml).
BOARD_DIR = Path(__file__).resolve().parents[2] / "calibration" / "boards"

# cornerSubPix: OpenCV's calibration samples use an 11-pixel half window; "auto" picks a window
# that stays inside one square (a window wider than a square pulls corners towards its neighbours).
OPENCV_SAMPLE_HALF_WINDOW = 11
AUTO_WINDOW_FRACTION = 0.3
MIN_HALF_WINDOW = 2
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 30, 1e-4)
CHESSBOARD_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
# ChArUco views with fewer corners than this are too weak to constrain a pose (and may be collinear).
MIN_CHARUCO_CORNERS = 6


@dataclass(frozen=True)
class Board:
    """A planar calibration target.

    Attributes:
        type: "chessboard" (cols x rows inner corners), "circles" / "acircles" (symmetric or asymmetric
            grid of cols x rows circles, OpenCV's patternSize), "charuco" (cols x rows squares).
        square: square size (chessboard, ChArUco) or circle spacing, in ``units``.
        marker: ChArUco marker side, in ``units``. dictionary: cv2.aruco predefined dictionary name.
        legacy: ChArUco pattern of OpenCV < 4.6 (differs for an even number of rows).
    """

    type: BoardType
    cols: int
    rows: int
    square: float
    units: str = "mm"
    marker: float = 0.0
    dictionary: str = "DICT_4X4_50"
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.type not in BOARD_TYPES:
            raise ConfigError(f"board type must be one of {', '.join(BOARD_TYPES)}, got {self.type!r}")
        if self.cols < 2 or self.rows < 2:
            raise ConfigError(f"board needs at least 2 x 2 points, got cols={self.cols}, rows={self.rows}")
        if not self.square > 0:
            raise ConfigError(f"board square size must be positive, got {self.square}")
        if self.units not in UNITS_IN_MM:
            raise ConfigError(f"board units must be one of {', '.join(UNITS_IN_MM)}, got {self.units!r}")
        if self.type == "charuco":
            if not 0 < self.marker < self.square:
                raise ConfigError(f"ChArUco marker size must be in (0, square={self.square}), got {self.marker}")
            if not hasattr(cv2.aruco, self.dictionary):
                raise ConfigError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. DICT_4X4_50, DICT_5X5_100)")

    @property
    def pattern_size(self) -> tuple[int, int]:
        """OpenCV's patternSize (points per row, points per column)."""
        return (self.cols, self.rows)

    def object_points(self) -> np.ndarray:
        """[N, 3] float64 board-frame points in ``units``, indexed by detection id.

        Chessboard and symmetric grids: row-major, ``(j * square, i * square, 0)``; asymmetric grid:
        ``((2 j + i % 2) * square, i * square, 0)`` as OpenCV's calibration sample; ChArUco: the
        board's getChessboardCorners().
        """
        if self.type == "charuco":
            return self.charuco().getChessboardCorners().astype(np.float64)
        i, j = np.mgrid[0:self.rows, 0:self.cols]
        x = (2 * j + i % 2) if self.type == "acircles" else j
        return np.stack([x.ravel(), i.ravel(), np.zeros(i.size)], axis=1).astype(np.float64) * self.square

    def charuco(self) -> "cv2.aruco.CharucoBoard":
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard((self.cols, self.rows), float(self.square), float(self.marker), dictionary)
        board.setLegacyPattern(self.legacy)
        return board

    def to_dict(self) -> dict[str, Any]:
        """The ``board`` entry of calibration.json."""
        out: dict[str, Any] = {"type": self.type, "cols": self.cols, "rows": self.rows, "square": self.square,
                               "units": self.units}
        if self.type == "charuco":
            out.update(marker=self.marker, dictionary=self.dictionary, legacy=self.legacy)
        return out


@dataclass(frozen=True)
class BoardDetection:
    """The board points found in one image: ``ids`` [n] int64 into object_points, ``corners`` [n, 2] float64 px."""

    ids: np.ndarray
    corners: np.ndarray


def board_from_dict(data: dict[str, Any], source: str = "board") -> Board:
    """A Board from a mapping (preset YAML or calibration.json's ``board``); unknown keys are errors."""
    known = set(Board.__dataclass_fields__)
    unknown = sorted(set(data) - known - {"description"})
    if unknown:
        raise ConfigError(f"{source}: unknown board key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}")
    missing = [k for k in ("type", "cols", "rows", "square") if k not in data]
    if missing:
        raise ConfigError(f"{source}: board key {missing[0]!r} is missing")
    try:
        return Board(type=data["type"], cols=int(data["cols"]), rows=int(data["rows"]), square=float(data["square"]),
                     units=str(data.get("units", "mm")), marker=float(data.get("marker", 0.0)),
                     dictionary=str(data.get("dictionary", "DICT_4X4_50")), legacy=bool(data.get("legacy", False)))
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise ConfigError(f"{source}: {err}") from err
        raise ConfigError(f"{source}: board values have the wrong type ({err})") from err


def board_presets() -> list[str]:
    """Names of the presets in calibration/boards."""
    return sorted(p.stem for p in BOARD_DIR.glob("*.yaml"))


def parse_board_spec(spec: str) -> Board:
    """A board from ``TYPE:COLSxROWS:SQUARE[:MARKER[:DICTIONARY[:legacy]]]`` in mm,
    e.g. ``chessboard:9x6:25`` or ``charuco:5x7:30:22:DICT_4X4_50``."""
    parts = spec.split(":")
    try:
        cols, rows = (int(v) for v in parts[1].lower().split("x"))
        data: dict[str, Any] = {"type": parts[0], "cols": cols, "rows": rows, "square": float(parts[2])}
        if len(parts) > 3:
            data["marker"] = float(parts[3])
        if len(parts) > 4:
            data["dictionary"] = parts[4]
        data["legacy"] = len(parts) > 5 and parts[5] == "legacy"
    except (IndexError, ValueError) as err:
        raise ConfigError(f"board spec {spec!r} must look like TYPE:COLSxROWS:SQUARE[:MARKER[:DICTIONARY[:legacy]]] "
                          f"(e.g. chessboard:9x6:25, charuco:5x7:30:22:DICT_4X4_50)") from err
    return board_from_dict(data, f"board spec {spec!r}")


def load_board(name_or_path: str | Path) -> Board:
    """A preset by name (``opencv_9x6``), a YAML file of board keys, or an inline spec (parse_board_spec)."""
    path = Path(name_or_path)
    if not path.is_file() and ":" in str(name_or_path):
        return parse_board_spec(str(name_or_path))
    if not path.is_file():
        path = BOARD_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown board {str(name_or_path)!r}: not a file, and no preset of that name "
                          f"(presets: {', '.join(board_presets()) or 'none found in ' + str(BOARD_DIR)})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"board file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"board file {path} must hold a mapping of board keys")
    return board_from_dict(data, str(path))


def subpix_half_window(corners: np.ndarray, board: Board, half_window: int | None) -> int:
    """cornerSubPix half window: ``half_window`` as given, or (None) a fraction of the smallest spacing
    between neighbouring corners of this view, capped at OpenCV's sample value.

    corners: [rows * cols, 2] float px, row-major.
    """
    if half_window is not None:
        return half_window
    grid = corners.reshape(board.rows, board.cols, 2)
    spacing = min(np.linalg.norm(np.diff(grid, axis=0), axis=-1).min(),
                  np.linalg.norm(np.diff(grid, axis=1), axis=-1).min())
    return int(np.clip(AUTO_WINDOW_FRACTION * spacing, MIN_HALF_WINDOW, OPENCV_SAMPLE_HALF_WINDOW))


def _detect_chessboard(gray: np.ndarray, board: Board, half_window: int | None) -> BoardDetection | None:
    """cv2.findChessboardCorners then cv2.cornerSubPix, as OpenCV's calibration.cpp sample does."""
    found, corners = cv2.findChessboardCorners(gray, board.pattern_size, flags=CHESSBOARD_FLAGS)
    if not found:
        return None
    win = subpix_half_window(corners.reshape(-1, 2), board, half_window)
    corners = cv2.cornerSubPix(gray, corners, (win, win), (-1, -1), SUBPIX_CRITERIA)
    return BoardDetection(np.arange(len(corners)), corners.reshape(-1, 2).astype(np.float64))


def _detect_circles(gray: np.ndarray, board: Board) -> BoardDetection | None:
    """cv2.findCirclesGrid: blob centres are already sub-pixel, no refinement."""
    flags = cv2.CALIB_CB_ASYMMETRIC_GRID if board.type == "acircles" else cv2.CALIB_CB_SYMMETRIC_GRID
    found, centers = cv2.findCirclesGrid(gray, board.pattern_size, None, flags)
    if not found:
        return None
    return BoardDetection(np.arange(len(centers)), centers.reshape(-1, 2).astype(np.float64))


def _detect_charuco(gray: np.ndarray, board: Board, detector: Any) -> BoardDetection | None:
    """cv2.aruco.CharucoDetector.detectBoard, with sub-pixel corner refinement of the markers."""
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or len(ids) < MIN_CHARUCO_CORNERS:
        return None
    return BoardDetection(ids.ravel().astype(np.int64), corners.reshape(-1, 2).astype(np.float64))


def make_detector(board: Board, half_window: int | None) -> Any:
    """A callable ``gray [H, W] uint8 -> BoardDetection | None`` for ``board`` (detectors built once)."""
    if board.type == "chessboard":
        return lambda gray: _detect_chessboard(gray, board, half_window)
    if board.type in ("circles", "acircles"):
        return lambda gray: _detect_circles(gray, board)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.CharucoDetector(board.charuco(), cv2.aruco.CharucoParameters(), params)
    return lambda gray: _detect_charuco(gray, board, detector)


def detect_board(gray: np.ndarray, board: Board, half_window: int | None = None) -> BoardDetection | None:
    """Find ``board`` in one grey image [H, W] uint8; None when it is not (fully, for grids) visible."""
    return make_detector(board, half_window)(gray)
