"""Crop cameras: their rays against cv2.projectPoints, the box centre at the crop's centre, crops of real pixels."""

import cv2
import numpy as np
import pytest
import torch

from facecap.camera.model import Calibration, Camera
from facecap.camera.torch_camera import CameraTensors
from facecap.errors import ShapeError
from facecap.learn.crops import (
    crop_cameras,
    crop_pixel_rays,
    cut_crops,
    landmark_box,
    resample_crops,
    rotation_onto_axis,
    source_pixels,
)
from facecap.synth.cameras import look_at

K = np.array([[900.0, 0, 410.0], [0, 905.0, 290.0], [0, 0, 1]])
DIST = np.array([-0.2, 0.08, 1e-3, -1e-3, 0.0])


def _camera() -> tuple[Camera, CameraTensors]:
    R, t = look_at(np.array([300.0, 80.0, 900.0]), np.zeros(3))
    cam = Camera("c", (800, 600), K, DIST, R, t)
    return cam, CameraTensors.from_calibration(Calibration("mm", (cam,)), dtype=torch.float64)


def _cv2_pixels(cam: Camera, X: np.ndarray) -> np.ndarray:
    return cv2.projectPoints(X, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0][:, 0]


def test_landmark_box_spans_the_confident_points():
    points = np.array([[[10.0, 20.0], [30.0, 60.0], [20.0, 40.0], [500.0, 500.0]]])
    centre, side, found = landmark_box(points, np.array([[1.0, 1.0, 0.5, 0.0]]))
    np.testing.assert_allclose(centre, [[20.0, 40.0]])
    np.testing.assert_allclose(side, [40.0])
    assert found.tolist() == [True]
    assert landmark_box(points, np.array([[1.0, 1.0, 0.0, 0.0]]))[2].tolist() == [False]


def test_rotation_onto_axis_is_the_smallest_rotation_to_z(rng):
    d = torch.nn.functional.normalize(torch.as_tensor(rng.normal(size=(20, 3)) * [0.3, 0.3, 1] + [0, 0, 2]), dim=-1)
    J = rotation_onto_axis(d)
    z = torch.tensor([0.0, 0, 1], dtype=torch.float64).expand(20, 3)
    torch.testing.assert_close(J @ d[..., None], z[..., None])
    torch.testing.assert_close(J @ J.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(20, 3, 3))
    axis = torch.linalg.cross(d, torch.tensor([0.0, 0, 1], dtype=torch.float64).expand(20, 3), dim=-1)
    torch.testing.assert_close(J @ axis[..., None], axis[..., None])       # it turns about d x z only
    torch.testing.assert_close(rotation_onto_axis(torch.tensor([[0.0, 0, 1]], dtype=torch.float64)),
                               torch.eye(3, dtype=torch.float64)[None])


def test_crop_pixels_see_the_points_cv2_projects_there(rng):
    """A world point seen at crop pixel p by the pinhole crop camera is where cv2.projectPoints (with the real
    camera's distortion) puts it in the frame."""
    cam, cams = _camera()
    box_centre = np.array([[455.0, 250.0]])
    crops = crop_cameras(cams, box_centre, np.array([220.0]), size=64, margin=1.3)
    X = rng.normal(0, 40.0, size=(30, 3))
    in_crop = (crops.R[0].numpy() @ X.T).T + crops.t[0].numpy()
    px_crop = in_crop[:, :2] / in_crop[:, 2:] * crops.focal[0].item() + (64 - 1) / 2
    where = source_pixels(crops, cams)[0].numpy()                                 # [S, S, 2]
    # Bilinear interpolation of the smooth map at the crop pixel.
    sampled = np.stack([cv2.remap(where[..., k].astype(np.float32), px_crop[:, 0].astype(np.float32)[None],
                                  px_crop[:, 1].astype(np.float32)[None], cv2.INTER_LINEAR)[0] for k in range(2)], -1)
    np.testing.assert_allclose(sampled, _cv2_pixels(cam, X), atol=0.05)


def test_the_box_centre_is_the_crop_centre_and_the_box_spans_the_crop_over_margin():
    cam, cams = _camera()
    crops = crop_cameras(cams, np.array([[455.0, 250.0]]), np.array([220.0]), size=65, margin=1.3)
    where = source_pixels(crops, cams)[0].numpy()
    np.testing.assert_allclose(where[32, 32], [455.0, 250.0], atol=1e-6)
    width = np.linalg.norm(where[32, -1] - where[32, 0]) * 65 / 64                 # pixel centres span S - 1
    assert width == pytest.approx(1.3 * 220.0, rel=0.03)                             # up to the lens's stretch
    rays = crop_pixel_rays(crops)
    assert rays.shape == (1, 65, 65, 3) and torch.all(rays[..., 2] == 1)


def test_the_map_interpolated_from_nodes_is_the_map():
    """The crop-to-frame map from 20 x 20 nodes (every 5th pixel), interpolated, matches the map at every
    pixel: a crop far off the camera's axis (a steep rotation) through a lens with strong distortion."""
    cam, cams = _camera()
    crops = crop_cameras(cams, np.array([[90.0, 520.0]]), np.array([160.0]), size=96, margin=1.3)
    full, interpolated = source_pixels(crops, cams), source_pixels(crops, cams, nodes=20)
    assert interpolated.shape == full.shape == (1, 96, 96, 2)
    torch.testing.assert_close(interpolated[:, ::5, ::5], full[:, ::5, ::5], atol=1e-9, rtol=0)     # the nodes
    assert (interpolated - full).abs().max() < 0.02                              # frame px between them


def test_cut_crops_reads_the_frame_at_the_mapped_pixels():
    """A frame whose colour is a linear ramp of its pixel coordinates: the crop holds the mapped coordinates."""
    cam, cams = _camera()
    crops = crop_cameras(cams, np.array([[400.0, 300.0]]), np.array([150.0]), size=32, margin=1.3)
    v, u = np.mgrid[0:600, 0:800]
    frame = np.stack([u * 255 / 799, v * 255 / 599, np.full_like(u, 128)], -1).round().astype(np.uint8)
    crop = cut_crops([frame], crops, cams)[0].astype(float)
    where = source_pixels(crops, cams)[0].numpy()
    np.testing.assert_allclose(crop[..., 0], where[..., 0] * 255 / 799, atol=1.5)
    np.testing.assert_allclose(crop[..., 1], where[..., 1] * 255 / 599, atol=1.5)
    with pytest.raises(ShapeError, match="as many images"):
        cut_crops([frame, frame], crops, cams)


def test_resample_crops_samples_at_pixel_positions():
    canvas = torch.arange(2 * 3 * 5 * 7, dtype=torch.float64).reshape(2, 3, 5, 7)
    grid = torch.tensor([[[[0.0, 0.0], [6.0, 4.0]]], [[[2.5, 1.0], [3.0, 2.0]]]], dtype=torch.float64)
    out = resample_crops(canvas, grid)
    torch.testing.assert_close(out[0, :, 0, 0], canvas[0, :, 0, 0])
    torch.testing.assert_close(out[0, :, 0, 1], canvas[0, :, 4, 6])
    torch.testing.assert_close(out[1, :, 0, 0], (canvas[1, :, 1, 2] + canvas[1, :, 1, 3]) / 2)
