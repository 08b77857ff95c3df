"""The performer frame: a robust rest pose, equivariant to the world's choice of axes; continuous Euler angles."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.export.head import continuous_euler, delivered_motion, in_performer_frame, rest_pose
from facecap.geometry.rotations import euler_xyz_from_matrix, matrix_from_euler_xyz


def _take(rng, T=120, turned_fraction=0.3, turn_deg=40.0):
    """Head poses in a y-up world: at rest (small nods) most of the time, turned ``turn_deg`` in yaw otherwise.

    The rest pose is R_rest, t_rest; returns (anim, R_rest, t_rest, at_rest mask).
    """
    R_rest = Rotation.from_euler("xyz", [5, -20, 3], degrees=True).as_matrix()
    t_rest = np.array([12.0, 1650.0, -40.0])
    at_rest = rng.uniform(size=T) >= turned_fraction
    wobble = rng.normal(scale=np.radians(0.3), size=(T, 3))
    wobble[~at_rest, 1] += np.radians(turn_deg)
    R = R_rest @ matrix_from_euler_xyz(wobble)
    t = t_rest + rng.normal(scale=0.5, size=(T, 3)) + np.outer(~at_rest, [30.0, 0.0, 10.0])
    anim = Animation(("jawOpen",), rng.uniform(size=(T, 1)), R, t, units="mm")
    return anim, R_rest, t_rest, at_rest


def _moved(anim, G, g):
    """The same take in another world: X' = G X + g."""
    return Animation(anim.shape_names, anim.weights, G @ anim.R, anim.t @ G.T + g, units=anim.units)


def test_rest_pose_is_the_median_not_the_mean(rng):
    anim, R_rest, t_rest, at_rest = _take(rng)
    rest = rest_pose(anim)
    off = np.degrees(Rotation.from_matrix(rest.R.T @ R_rest).magnitude())
    assert off < 0.3                 # a mean would lean ~12° towards the 30 % of turned frames
    mean = Rotation.from_matrix(anim.R).mean().as_matrix()
    assert np.degrees(Rotation.from_matrix(mean.T @ R_rest).magnitude()) > 8
    np.testing.assert_allclose(rest.t, t_rest, atol=1.0)
    performer = in_performer_frame(anim, rest)
    rest_angles = np.degrees(np.abs(euler_xyz_from_matrix(performer.R[at_rest])))
    assert rest_angles.max() < 2.0 and np.median(rest_angles) < 0.5      # the 0.3° nods around ~0
    assert np.abs(performer.t[at_rest]).max() < 4.0


def test_performer_frame_does_not_depend_on_the_world(rng):
    """A y-up world and an OpenCV camera's world (y down, z into the scene, 180° about x) give the same curves."""
    anim, *_ = _take(rng)
    G = Rotation.from_euler("xyz", [180, 25, -4], degrees=True).as_matrix()
    moved = _moved(anim, G, np.array([100.0, -300.0, 900.0]))
    a, rest_a = delivered_motion(anim, "performer")
    b, rest_b = delivered_motion(moved, "performer")
    np.testing.assert_allclose(b.R, a.R, atol=1e-9)
    np.testing.assert_allclose(b.t, a.t, atol=1e-8)
    np.testing.assert_allclose(rest_b.R, G @ rest_a.R, atol=1e-9)
    world, rest = delivered_motion(moved, "world")
    assert world is moved and rest is None
    with pytest.raises(ValueError, match="head_frame must be"):
        delivered_motion(anim, "camera")


def test_continuous_euler_keeps_each_rotation_and_never_jumps(rng):
    # A slow spin about every axis at once: the raw angles wrap and cross gimbal lock; the continuous ones don't jump.
    T = 400
    rotvec = np.outer(np.linspace(0, 1, T), [7.0, 4.0, -9.0])
    R = Rotation.from_rotvec(rotvec).as_matrix()
    raw = euler_xyz_from_matrix(R)
    smooth = continuous_euler(raw)
    np.testing.assert_allclose(matrix_from_euler_xyz(smooth), R, atol=1e-9)
    step = np.radians(3.0)                     # the spin turns ~3° a frame
    assert np.abs(np.diff(raw, axis=0)).max() > np.pi
    assert np.abs(np.diff(smooth, axis=0)).max() < 4 * step
