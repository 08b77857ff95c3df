"""Rendered shoots (board texture warped through each lens, blurred, noisy) calibrated from the images."""

import numpy as np
import pytest

from facecap.calibrate import CalibrateConfig, calibrate
from facecap.calibrate.boards import load_board
from facecap.testing.board_images import SyntheticShoot, make_rig, random_board_poses, write_shoot


def rotation_error_deg(Ra, Rb):
    return np.degrees(np.arccos(np.clip((np.trace(Ra @ Rb.T) - 1) / 2, -1, 1)))


@pytest.mark.slow
def test_rendered_rig_with_distortion(tmp_path):
    rng = np.random.default_rng(5)
    board = load_board("chessboard_10x7_30mm")
    truth = make_rig(3, rng, (640, 480), arc_deg=70, dist=np.array([-0.2, 0.1, 0.0, 0.0, 0.0]))
    poses = random_board_poses(24, board, truth, rng, tilt_deg=45, distance=600, spread=60)
    dirs = write_shoot(SyntheticShoot(truth, board, poses), tmp_path / "shoot", rng)
    config = CalibrateConfig()
    config.intrinsics.zero_tangential = True
    result = calibrate([str(d) for d in dirs], board, config)
    assert result.calibration.rms_px < 0.1
    for est, true in zip(result.calibration.cameras, truth.cameras):
        assert rotation_error_deg(est.R, true.R) < 0.05
        assert np.linalg.norm(est.center - true.center) < 0.5
        assert abs(est.K[0, 0] / true.K[0, 0] - 1) < 0.002


def test_rendered_charuco_small(tmp_path):
    rng = np.random.default_rng(1)
    board = load_board("charuco_5x7_4x4")
    truth = make_rig(3, rng, (400, 300), arc_deg=40)
    poses = random_board_poses(5, board, truth, rng, tilt_deg=30, distance=450, spread=20, min_cameras=3)
    dirs = write_shoot(SyntheticShoot(truth, board, poses), tmp_path / "shoot", rng)
    config = CalibrateConfig()
    result = calibrate([str(d) for d in dirs], board, config, tmp_path / "out")
    assert result.calibration.rms_px < 0.3
    for est, true in zip(result.calibration.cameras, truth.cameras):
        assert rotation_error_deg(est.R, true.R) < 1.0
        assert np.linalg.norm(est.center - true.center) < 10.0
    assert (tmp_path / "out" / "calibration.json").is_file()
