"""Torch cameras against OpenCV: projection (all 14 coefficients), gradients, clip space, scaling."""

import cv2
import numpy as np
import pytest
import torch

from facecap.camera.model import Calibration, Camera
from facecap.camera.torch_camera import (CameraTensors, canvas_size, near_far_from_points, project_points,
                                         project_points_with_jacobian, scaled_intrinsics, scaled_size, world_to_camera,
                                         world_to_clip)
from facecap.errors import ShapeError

# Scale of random distortion per coefficient (k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4 tauX tauY): a realistic lens.
DIST_SCALE = np.array([0.1, 0.05, 1e-3, 1e-3, 0.01, 0.05, 0.01, 5e-3, 1e-3, 1e-3, 1e-3, 1e-3, 0.01, 0.01])


def random_calibration(rng: np.random.Generator, n: int = 3, n_dist: int = 14, size=(640, 480)) -> Calibration:
    cams = []
    for i in range(n):
        R = cv2.Rodrigues(rng.normal(size=3) * 0.3)[0]
        t = np.array([0.0, 0.0, 500.0]) + rng.normal(size=3) * 20
        K = np.array([[800 + rng.uniform(-50, 50), 0, size[0] / 2 + rng.normal() * 5],
                      [0, 800 + rng.uniform(-50, 50), size[1] / 2 + rng.normal() * 5], [0, 0, 1.0]])
        dist = (rng.normal(size=14) * DIST_SCALE)[:n_dist]
        cams.append(Camera(f"cam{i:02d}", size, K, dist, R, t))
    return Calibration("mm", tuple(cams))


def cv2_project(X: np.ndarray, cam: Camera) -> np.ndarray:
    return cv2.projectPoints(X, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0][:, 0]


@pytest.mark.parametrize("n_dist", [4, 5, 8, 12, 14])
def test_project_points_matches_cv2(rng, n_dist):
    calib = random_calibration(rng, n_dist=n_dist)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    X = rng.normal(size=(2, 40, 3)) * 60
    uv = project_points(torch.as_tensor(X), cams).numpy()
    assert uv.shape == (2, 3, 40, 2)
    for b in range(2):
        for c, cam in enumerate(calib.cameras):
            np.testing.assert_allclose(uv[b, c], cv2_project(X[b], cam), atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_dist", [0, 4, 5, 8, 12, 14])
def test_projection_jacobian_matches_cv2s(rng, n_dist):
    """cv2.projectPoints' own Jacobian w.r.t. tvec is d pixel / d camera-frame point; times R, w.r.t. the world
    point."""
    calib = random_calibration(rng, n_dist=n_dist)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    X = rng.normal(size=(2, 40, 3)) * 60
    uv, J = project_points_with_jacobian(torch.as_tensor(X), cams)
    assert uv.shape == (2, 3, 40, 2) and J.shape == (2, 3, 40, 2, 3)
    np.testing.assert_array_equal(uv.numpy(), project_points(torch.as_tensor(X), cams).numpy())
    for b in range(2):
        for c, cam in enumerate(calib.cameras):
            jac = cv2.projectPoints(X[b], cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[1]   # [2N, 10 + D]
            d_tvec = jac[:, 3:6].reshape(40, 2, 3)
            np.testing.assert_allclose(J[b, c].numpy(), d_tvec @ cam.R, rtol=1e-6, atol=1e-8)


def test_project_points_float32_and_unbatched(rng):
    calib = random_calibration(rng, n=2)
    X = rng.normal(size=(30, 3)) * 60
    uv = project_points(torch.as_tensor(X, dtype=torch.float32), CameraTensors.from_calibration(calib))
    assert uv.shape == (2, 30, 2) and uv.dtype == torch.float32
    np.testing.assert_allclose(uv[1].numpy(), cv2_project(X, calib.cameras[1]), atol=2e-3)


def test_project_gradcheck_points_and_camera(rng):
    calib = random_calibration(rng, n=2)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    X = torch.as_tensor(rng.normal(size=(1, 4, 3)) * 60).requires_grad_(True)
    K, dist, R, t = (v.clone().requires_grad_(True) for v in (cams.K, cams.dist, cams.R, cams.t))

    def fn(X, K, dist, R, t):
        return project_points(X, CameraTensors(K, dist, R, t, cams.image_sizes, cams.names))
    assert torch.autograd.gradcheck(fn, (X, K, dist, R, t), eps=1e-6, atol=1e-5)


def test_world_to_clip_round_trip_matches_pinhole(rng):
    calib = random_calibration(rng)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    X = torch.as_tensor(rng.normal(size=(2, 50, 3)) * 60)
    pad = (7, 3)
    for scale in (1.0, 0.5, 2.0):
        clip = world_to_clip(X, cams, near=10.0, far=5000.0, scale=scale, pad=pad)
        W, H = canvas_size(cams, scale, pad)
        ndc = clip[..., :3] / clip[..., 3:]
        # Viewport: NDC -> pixel index space of the canvas (pixel centre at (2i + 1)/W - 1), minus the pad.
        u = (ndc[..., 0] + 1) * W / 2 - 0.5 - pad[0]
        v = (ndc[..., 1] + 1) * H / 2 - 0.5 - pad[1]
        pin = project_points(X, cams, distort=False)
        # Pinhole pixels at full resolution mapped to the scaled image: x' = (x + 0.5) s - 0.5.
        expected = (pin + 0.5) * scale - 0.5
        torch.testing.assert_close(torch.stack([u, v], -1), expected, atol=1e-8, rtol=0)
        z = world_to_camera(X, cams)[..., 2]
        torch.testing.assert_close(clip[..., 3], z)
        expected_z = (5010.0 / 4990.0) - 2 * 5000.0 * 10.0 / 4990.0 / z
        torch.testing.assert_close(ndc[..., 2], expected_z)


def test_clip_depth_range_and_near_far(rng):
    calib = random_calibration(rng)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    X = torch.as_tensor(rng.normal(size=(3, 20, 3)) * 60)
    near, far = near_far_from_points(X, cams)
    z = world_to_camera(X, cams)[..., 2]
    assert (near < z.amin(dim=(0, 2))).all() and (far > z.amax(dim=(0, 2))).all()
    clip = world_to_clip(X, cams, near, far)
    ndc_z = clip[..., 2] / clip[..., 3]
    assert ndc_z.abs().max() < 1
    eye = torch.eye(3, dtype=torch.float64)[None]
    identity_cam = CameraTensors(eye, torch.zeros(1, 14, dtype=torch.float64), eye,
                                 torch.zeros(1, 3, dtype=torch.float64), cams.image_sizes[:1], ("id",))
    at_planes = world_to_clip(torch.tensor([[0.0, 0.0, 100.0], [0.0, 0.0, 900.0]], dtype=torch.float64),
                              identity_cam, 100.0, 900.0)
    torch.testing.assert_close(at_planes[0, :, 2] / at_planes[0, :, 3], torch.tensor([-1.0, 1.0], dtype=torch.float64))


def test_scaled_intrinsics_keeps_pixel_centres():
    K = torch.tensor([[800.0, 0, 319.5], [0, 800, 239.5], [0, 0, 1]], dtype=torch.float64)
    K2 = scaled_intrinsics(K, 0.5)
    # The optical centre at the image centre stays at the centre of the half-size image.
    assert K2[0, 2].item() == pytest.approx(159.5) and K2[1, 2].item() == pytest.approx(119.5)
    assert K2[0, 0].item() == pytest.approx(400.0)
    assert scaled_size((640, 480), 0.25) == (160, 120)
    assert scaled_intrinsics(K, 1.0) is K


def test_camera_tensors_guards(rng):
    calib = random_calibration(rng, n=2)
    cams = CameraTensors.from_calibration(calib)
    with pytest.raises(ShapeError, match="dist must have shape"):
        CameraTensors(cams.K, cams.dist[:, :5], cams.R, cams.t, cams.image_sizes, cams.names)
    with pytest.raises(ShapeError, match="names must hold 2"):
        CameraTensors(cams.K, cams.dist, cams.R, cams.t, cams.image_sizes, ("a",))
    with pytest.raises(ShapeError, match="X_world must have shape"):
        project_points(torch.zeros(4, 2), cams)
    odd = Calibration("mm", (calib.cameras[0], Camera("other", (320, 240), calib.cameras[1].K,
                                                        calib.cameras[1].dist, calib.cameras[1].R,
                                                        calib.cameras[1].t)))
    with pytest.raises(ShapeError, match="share one image size"):
        CameraTensors.from_calibration(odd).common_size()


def test_select_and_to(rng):
    calib = random_calibration(rng)
    cams = CameraTensors.from_calibration(calib)
    sub = cams.select([2, 0]).to(dtype=torch.float64)
    assert sub.names == ("cam02", "cam00") and sub.dtype == torch.float64
    torch.testing.assert_close(sub.K[0], cams.K[2].double())
