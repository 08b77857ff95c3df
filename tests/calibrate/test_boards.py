"""Boards: object points against OpenCV's conventions, presets, inline specs, detection on a rendered view."""

import cv2
import numpy as np
import pytest

from facecap.calibrate.boards import Board, board_presets, detect_board, load_board, parse_board_spec
from facecap.errors import ConfigError
from facecap.testing.board_images import board_texture, make_rig, random_board_poses, render_view


def test_chessboard_object_points_row_major():
    pts = Board("chessboard", 9, 6, 25.0).object_points()
    assert pts.shape == (54, 3)
    np.testing.assert_allclose(pts[[0, 1, 9, 53]], [[0, 0, 0], [25, 0, 0], [0, 25, 0], [200, 125, 0]])


def test_asymmetric_grid_matches_opencv_sample():
    # OpenCV calibration.cpp: Point3f((2*j + i % 2)*squareSize, i*squareSize, 0)
    pts = Board("acircles", 4, 11, 10.0).object_points()
    np.testing.assert_allclose(pts[[0, 1, 4, 5]], [[0, 0, 0], [20, 0, 0], [10, 10, 0], [30, 10, 0]])


def test_charuco_points_come_from_opencv():
    board = Board("charuco", 5, 7, 30.0, marker=22.0)
    np.testing.assert_allclose(board.object_points(), board.charuco().getChessboardCorners())
    assert board.object_points().shape == (24, 3)


def test_presets_load_and_spec_parses():
    assert {"opencv_9x6", "charuco_5x7_4x4"} <= set(board_presets())
    for name in board_presets():
        assert load_board(name).square > 0
    assert load_board("opencv_9x6") == Board("chessboard", 9, 6, 25.0)
    assert parse_board_spec("charuco:5x7:30:22:DICT_4X4_50") == Board("charuco", 5, 7, 30.0, marker=22.0)


@pytest.mark.parametrize("spec, match", [
    ("nosuchboard", "unknown board 'nosuchboard'"),
    ("chessboard:9:25", "must look like TYPE:COLSxROWS:SQUARE"),
    ("hexagons:9x6:25", "board type must be one of"),
    ("charuco:5x7:30:40", "marker size must be in"),
    ("chessboard:1x6:25", "at least 2 x 2"),
])
def test_bad_boards_raise(spec, match):
    with pytest.raises(ConfigError, match=match):
        load_board(spec)


@pytest.mark.parametrize("name", ["opencv_9x6", "charuco_5x7_4x4"])
def test_detection_on_rendered_view_is_subpixel(name, rng):
    board = load_board(name)
    calib = make_rig(1, rng, (480, 360))
    T_cam_board = random_board_poses(1, board, calib, rng, tilt_deg=20, distance=450, min_cameras=1)[0]
    cam = calib.cameras[0]
    image = render_view(cam, T_cam_board, board_texture(board), rng, noise=1.0)
    found = detect_board(image, board)
    assert found is not None and len(found.ids) >= 0.8 * len(board.object_points())
    truth = cv2.projectPoints(board.object_points()[found.ids], cv2.Rodrigues(T_cam_board[:3, :3])[0],
                              T_cam_board[:3, 3], cam.K, cam.dist)[0].reshape(-1, 2)
    assert np.sqrt(np.mean(np.sum((found.corners - truth) ** 2, axis=1))) < 0.15


def test_no_board_in_blank_image():
    assert detect_board(np.full((120, 160), 128, np.uint8), load_board("opencv_9x6")) is None
