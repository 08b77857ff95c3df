"""Joint calibration from projected board points with known truth (fast: no rendering), and bad input."""

import cv2
import numpy as np
import pytest

from facecap.calibrate import CalibrateConfig, solve_detections
from facecap.calibrate.boards import load_board
from facecap.calibrate.detect import Detections, ViewDetection
from facecap.errors import FacecapError
from facecap.testing.board_images import make_rig, random_board_poses

NOISE_PX = 0.05


def projected_detections(calib, board, poses, rng, visible=None, noise=NOISE_PX) -> Detections:
    """Detections of ``board`` at ``poses`` [F, 4, 4] (T_world_board): projected corners plus noise.
    visible: optional [C, F] bool mask of which camera sees which frame."""
    obj = board.object_points()
    det = Detections(board, list(calib.names), {c.name: c.image_size for c in calib.cameras})
    for c, cam in enumerate(calib.cameras):
        for f, T in enumerate(poses):
            X = obj @ T[:3, :3].T + T[:3, 3]
            px = cv2.projectPoints(X, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0].reshape(-1, 2)
            inside = (px >= 0).all() and (px < cam.image_size).all() and (visible is None or visible[c, f])
            ids = np.arange(len(obj)) if inside else np.zeros(0, np.int64)
            corners = px + rng.normal(0, noise, px.shape) if inside else np.zeros((0, 2))
            det.views.append(ViewDetection(cam.name, f"{f:03d}", f"{cam.name}/{f:03d}.png", ids, corners))
    return det


def rotation_error_deg(Ra, Rb):
    return np.degrees(np.arccos(np.clip((np.trace(Ra @ Rb.T) - 1) / 2, -1, 1)))


@pytest.mark.parametrize("n_cameras", [3, pytest.param(8, marks=pytest.mark.slow)])
def test_recovers_rig(n_cameras, rng):
    # Tangential distortion trades off against the principal point (and so the camera's rotation);
    # a lens without it, calibrated with zero_tangential, pins the rotation to the 0.05 degree target.
    board = load_board("chessboard_10x7_30mm")
    truth = make_rig(n_cameras, rng, (640, 480), arc_deg=80, dist=np.array([-0.2, 0.1, 0.0, 0.0, 0.0]))
    poses = random_board_poses(30, board, truth, rng, tilt_deg=50, spread=60)
    config = CalibrateConfig()
    config.intrinsics.zero_tangential = True
    result = solve_detections(projected_detections(truth, board, poses, rng), config)
    for est, true in zip(result.calibration.cameras, truth.cameras):
        assert rotation_error_deg(est.R, true.R) < 0.05
        assert np.linalg.norm(est.center - true.center) < 0.5
        assert abs(est.K[0, 0] / true.K[0, 0] - 1) < 0.002
    assert result.calibration.rms_px == pytest.approx(NOISE_PX * np.sqrt(2), rel=0.1)  # 2D RMS of per-axis noise
    assert result.report["rejected"] == []


def test_rejects_corrupted_view_and_names_it(rng):
    board = load_board("opencv_9x6")
    truth = make_rig(2, rng, (640, 480), arc_deg=30)
    poses = random_board_poses(10, board, truth, rng, tilt_deg=30, spread=40)
    det = projected_detections(truth, board, poses, rng)
    bad = next(i for i, v in enumerate(det.views) if v.found and v.camera == "cam01")
    v = det.views[bad]
    det.views[bad] = ViewDetection(v.camera, v.key, v.label, v.ids, v.corners + rng.normal(0, 2.0, v.corners.shape))
    result = solve_detections(det, CalibrateConfig())
    assert [r["image"] for r in result.report["rejected"]] == [v.label]
    assert result.calibration.extra["rejected_views"][0]["image"] == v.label
    assert result.calibration.rms_px < 0.1


def test_world_is_the_board_in_a_chosen_image(rng):
    board = load_board("opencv_9x6")
    truth = make_rig(2, rng, (640, 480), arc_deg=30)
    poses = random_board_poses(8, board, truth, rng, tilt_deg=30, spread=40, min_cameras=2)
    config = CalibrateConfig(world="board:003")
    result = solve_detections(projected_detections(truth, board, poses, rng), config)
    for est, true in zip(result.calibration.cameras, truth.cameras):
        # x_cam = R_c (R_b X_board + t_b) + t_c
        R_true = true.R @ poses[3, :3, :3]
        assert rotation_error_deg(est.R, R_true) < 0.2
        np.testing.assert_allclose(est.t, true.R @ poses[3, :3, 3] + true.t, atol=2.0)
    with pytest.raises(FacecapError, match="no kept view of the board has key 'zzz'"):
        solve_detections(projected_detections(truth, board, poses, rng), CalibrateConfig(world="board:zzz"))


def test_no_board_found_raises(rng):
    board = load_board("opencv_9x6")
    truth = make_rig(2, rng)
    det = projected_detections(truth, board, random_board_poses(4, board, truth, rng), rng,
                               visible=np.zeros((2, 4), bool))
    with pytest.raises(FacecapError, match="was not found in any of 8 images"):
        solve_detections(det, CalibrateConfig())


def test_too_few_views_raises(rng):
    board = load_board("opencv_9x6")
    truth = make_rig(2, rng)
    visible = np.ones((2, 5), bool)
    visible[1, 2:] = False
    det = projected_detections(truth, board, random_board_poses(5, board, truth, rng), rng, visible=visible)
    with pytest.raises(FacecapError, match="camera 'cam01': board found in 2 images, need at least 3"):
        solve_detections(det, CalibrateConfig())


def test_disconnected_cameras_are_named(rng):
    board = load_board("opencv_9x6")
    truth = make_rig(4, rng, arc_deg=20)
    poses = random_board_poses(8, board, truth, rng, min_cameras=4, tilt_deg=20)
    visible = np.zeros((4, 8), bool)
    visible[:2, :4] = True   # cam00 and cam01 share frames 0-3
    visible[2:, 4:] = True   # cam02 and cam03 share frames 4-7 only
    det = projected_detections(truth, board, poses, rng, visible=visible)
    with pytest.raises(FacecapError, match="cameras cam02, cam03 share no board view with camera 'cam00'"):
        solve_detections(det, CalibrateConfig())
