"""The rig's units against a take's triangulated landmarks and against target meshes."""

import numpy as np
import pytest

from facecap.errors import FacecapError
from facecap.rig import build_demo_head, evaluate_rig
from facecap.rig.scale_check import check_mesh_scale, check_rig_scale, rms_radius


@pytest.fixture(scope="module")
def head():
    return build_demo_head()


def _take_landmarks(rig, rng, T=6, scale=1.0):
    """[T, L, 3] the rig's landmarks in mm, posed with expressions, a performer ``scale`` times the rig's
    size, 0.5 mm of noise and a fifth of the points not triangulated."""
    W = rng.uniform(0, 0.8, (T, rig.num_shapes))
    angles = rng.normal(0, 0.3, (T, 3))
    R = np.stack([np.linalg.qr(np.eye(3) + np.cross(np.eye(3), a))[0] for a in angles])
    head = evaluate_rig(rig.in_units("mm"), W, vertices=rig.landmark_vertices) * scale
    X = np.einsum("tij,tlj->tli", R, head) + np.array([10.0, -20.0, 700.0]) + rng.normal(0, 0.5, head.shape)
    X[rng.uniform(size=X.shape[:2]) < 0.2] = np.nan
    return X


def test_rms_radius_is_the_rms_distance_from_the_centroid():
    points = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 3, 0], [0, -3, 0]]) + 5.0
    assert rms_radius(points) == pytest.approx(np.sqrt((1 + 1 + 9 + 9) / 4))
    assert rms_radius(points, np.array([1, 1, 0, 0])) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [0.8, 1.0, 1.3])
def test_a_rig_in_its_declared_units_passes(head, rng, scale):
    ratio = check_rig_scale(head, _take_landmarks(head, rng, scale=scale), "mm")
    assert ratio == pytest.approx(scale, rel=0.1)
    cm = _take_landmarks(head, rng) / 10                  # a calibration in cm: the same face
    assert check_rig_scale(head, cm, "cm") == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("numbers, declared, probable", [(10.0, "mm", "cm"), (0.1, "cm", "mm"), (1000.0, "mm", "m"),
                                                        (0.01, "m", "cm")])
def test_a_rig_off_by_a_power_of_ten_says_its_probable_unit(head, rng, numbers, declared, probable):
    """``numbers``: how many of the declared unit one true unit of the rig is: a rig in cm whose npz says
    mm holds numbers ten times too small for mm, and so on."""
    mm = head.in_units("mm")
    true_unit = {"mm": 1.0, "cm": 10.0, "m": 1000.0}[declared] * numbers
    wrong = mm.replace(units=declared, neutral=mm.neutral / true_unit, shape_deltas=mm.shape_deltas / true_unit,
                       corrective_deltas=mm.corrective_deltas / true_unit,
                       identity_deltas=mm.identity_deltas / true_unit)
    with pytest.raises(FacecapError, match=rf"probably in {probable}, not {declared}"):
        check_rig_scale(wrong, _take_landmarks(head, rng), "mm", source="take/")


def test_too_few_landmarks_check_nothing(head, rng):
    X = _take_landmarks(head, rng)
    X[:, 4:] = np.nan
    assert np.isnan(check_rig_scale(head.replace(units="m"), X, "mm"))


def test_meshes_in_other_units_than_the_rigs_are_named(head, rng):
    rig = head.in_units("cm")
    meshes = evaluate_rig(rig, rng.uniform(0, 1, (4, rig.num_shapes)))
    assert check_mesh_scale(rig, meshes) == pytest.approx(1.0, rel=0.1)
    with pytest.raises(FacecapError, match=r"meshes.npz are 10(\.\d)? times the size of the rig's neutral: they are "
                                           r"probably in mm, the rig in cm"):
        check_mesh_scale(rig, meshes * 10, "meshes.npz")
    with pytest.raises(FacecapError, match="probably in m, the rig in cm"):
        check_mesh_scale(rig, meshes / 100)
