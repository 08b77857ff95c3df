"""Multi-camera calibration from board images: boards, streamed detection, intrinsics, joint extrinsics, reports."""

from facecap.calibrate.api import CalibrationResult, calibrate, solve_detections
from facecap.calibrate.boards import Board, board_presets, detect_board, load_board
from facecap.calibrate.config import CalibrateConfig

__all__ = ["Board", "CalibrateConfig", "CalibrationResult", "board_presets", "calibrate", "detect_board",
           "load_board", "solve_detections"]
