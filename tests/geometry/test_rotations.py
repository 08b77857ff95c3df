import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from facecap.geometry import (axis_angle_to_matrix, euler_xyz_from_matrix, matrix_from_euler_xyz, matrix_to_axis_angle,
                              matrix_to_rotation_6d, rigid_procrustes, rotation_6d_to_matrix, skew_matrix)


def _rx(a):
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _ry(a):
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rz(a):
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def test_euler_xyz_is_fbx_order():
    rx, ry, rz = 0.3, -0.7, 1.1
    expected = _rz(rz) @ _ry(ry) @ _rx(rx)
    np.testing.assert_allclose(matrix_from_euler_xyz([rx, ry, rz]), expected, atol=1e-12)
    np.testing.assert_allclose(euler_xyz_from_matrix(expected), [rx, ry, rz], atol=1e-12)


def test_euler_round_trip_batch(rng):
    R = Rotation.random(50, random_state=1).as_matrix()
    np.testing.assert_allclose(matrix_from_euler_xyz(euler_xyz_from_matrix(R)), R, atol=1e-10)


def test_6d_round_trip_and_gradcheck():
    R = torch.as_tensor(Rotation.random(8, random_state=2).as_matrix())
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R)
    d6 = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))


def test_axis_angle_matches_scipy_and_is_smooth_at_zero():
    v = np.random.default_rng(3).normal(size=(10, 3))
    v[0] = 0.0
    np.testing.assert_allclose(axis_angle_to_matrix(torch.as_tensor(v)).numpy(),
                               Rotation.from_rotvec(v).as_matrix(), atol=1e-12)
    small = torch.tensor([[1e-6, -2e-6, 3e-7], [0.4, 0.1, -0.2]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (small,))


def test_matrix_to_axis_angle_matches_scipy_up_to_pi_and_near_zero():
    rotvec = Rotation.random(200, random_state=3).as_rotvec()
    rotvec = rotvec[np.linalg.norm(rotvec, axis=1) < np.pi - 1e-3]
    R = torch.as_tensor(Rotation.from_rotvec(rotvec).as_matrix())
    np.testing.assert_allclose(matrix_to_axis_angle(R).numpy(), rotvec, atol=1e-9)
    tiny = torch.tensor([[1e-9, -2e-9, 3e-10]], dtype=torch.float64)
    np.testing.assert_allclose(matrix_to_axis_angle(axis_angle_to_matrix(tiny)).numpy(), tiny.numpy(), atol=1e-18)


def test_skew_matrix_is_the_cross_product(rng):
    a, b = torch.as_tensor(rng.normal(size=(2, 10, 3)))
    torch.testing.assert_close(skew_matrix(a) @ b[..., None], torch.linalg.cross(a, b)[..., None])


@pytest.mark.parametrize("with_scale", [False, True])
def test_procrustes_recovers_transform(rng, with_scale):
    src = rng.normal(size=(30, 3))
    R = Rotation.random(random_state=4).as_matrix()
    s = 1.7 if with_scale else 1.0
    dst = s * src @ R.T + np.array([1.0, -2.0, 3.0])
    R_est, t_est, s_est = rigid_procrustes(src, dst, with_scale=with_scale)
    np.testing.assert_allclose(R_est, R, atol=1e-10)
    np.testing.assert_allclose(t_est, [1, -2, 3], atol=1e-10)
    assert s_est == pytest.approx(s)


def test_procrustes_needs_three_points():
    with pytest.raises(ValueError, match="at least 3 points"):
        rigid_procrustes(np.zeros((2, 3)), np.zeros((2, 3)))
