"""Lens warp: the inverse of OpenCV's distortion, the remap grid, and image undistortion."""

import cv2
import numpy as np
import pytest
import torch

from facecap.camera.model import Calibration, Camera
from facecap.camera.torch_camera import CameraTensors, project_points, scaled_size
from facecap.camera.undistort import LensWarp, undistort_image, undistort_pixels

K = np.array([[500.0, 0, 162.0], [0, 505.0, 118.0], [0, 0, 1]])
STRONG_DIST = np.array([-0.3, 0.12, 1e-3, -2e-3, -0.02])


def test_undistort_pixels_inverts_cv2_projection(rng):
    xy_true = rng.uniform(-0.3, 0.3, size=(200, 2))
    X = np.concatenate([xy_true, np.ones((200, 1))], 1)
    px = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, STRONG_DIST)[0][:, 0]
    xy, residual = undistort_pixels(px, K, STRONG_DIST)
    np.testing.assert_allclose(xy, xy_true, atol=1e-9)
    assert residual.max() < 1e-8


def test_lens_warp_moves_a_point_to_its_distorted_pixel(rng):
    """A bright dot drawn on the pinhole canvas lands where cv2.projectPoints (with distortion) puts it."""
    cam = Camera("c", (320, 240), K, STRONG_DIST, np.eye(3), np.zeros(3))
    cams = CameraTensors.from_calibration(Calibration("mm", (cam,)), dtype=torch.float64)
    for scale in (1.0, 0.5):
        warp = LensWarp.from_cameras(cams, scale)
        Ws, Hs = scaled_size(cam.image_size, scale)
        assert warp.grid.shape == (1, Hs, Ws, 2) and warp.pad[0] > 0 and warp.pad[1] > 0
        X = torch.tensor([[0.21, -0.14, 1.0]], dtype=torch.float64)
        pin = (project_points(X, cams, distort=False)[0, 0] + 0.5) * scale - 0.5 + torch.tensor(warp.pad)
        Wc, Hc = Ws + 2 * warp.pad[0], Hs + 2 * warp.pad[1]
        # A smooth bump centred on the pinhole position; its warped peak is found by a weighted mean.
        jj, ii = torch.meshgrid(torch.arange(Hc, dtype=torch.float64), torch.arange(Wc, dtype=torch.float64),
                                indexing="ij")
        bump = torch.exp(-((ii - pin[0]) ** 2 + (jj - pin[1]) ** 2) / (2 * 1.5 ** 2))
        out = warp.apply(bump[None, ..., None])[0, ..., 0]
        w = out / out.sum()
        jj2, ii2 = torch.meshgrid(torch.arange(Hs, dtype=torch.float64), torch.arange(Ws, dtype=torch.float64),
                                  indexing="ij")
        found = np.array([(w * ii2).sum().item(), (w * jj2).sum().item()])
        expected = (project_points(X, cams)[0, 0].numpy() + 0.5) * scale - 0.5
        assert np.abs(found - expected).max() < 0.05


def test_lens_warp_identity_without_distortion():
    cam = Camera("c", (64, 48), K, np.zeros(5), np.eye(3), np.zeros(3))
    warp = LensWarp.from_cameras(CameraTensors.from_calibration(Calibration("mm", (cam,)), dtype=torch.float64))
    img = torch.rand(2, 48 + 2 * warp.pad[1], 64 + 2 * warp.pad[0], 3, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(0))
    out = warp.apply(img)
    torch.testing.assert_close(out, img[:, warp.pad[1]:warp.pad[1] + 48, warp.pad[0]:warp.pad[0] + 64])
    with pytest.raises(ValueError, match="not a multiple"):
        LensWarp(warp.grid.repeat(3, 1, 1, 1), warp.pad, 1.0).apply(img)


def test_undistort_image_matches_cv2_undistort():
    cam = Camera("c", (320, 240), K, STRONG_DIST, np.eye(3), np.zeros(3))
    img = (np.random.default_rng(1).uniform(0, 255, (240, 320, 3))).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    ours = undistort_image(img, cam)
    ref = cv2.undistort(img, K, STRONG_DIST)
    assert np.abs(ours.astype(int) - ref.astype(int))[20:-20, 20:-20].max() <= 2
    with pytest.raises(ValueError, match="image is 10x10"):
        undistort_image(np.zeros((10, 10, 3), np.uint8), cam)
