"""Decimated rigs: counts as asked, the original surface at any weights, exact landmarks, parts and UVs kept."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from facecap.errors import FacecapError
from facecap.rig import load_rig, save_rig
from facecap.rig.decimate import Decimation, decimate_rig
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.testing.surface import closest_points_on_mesh, surface_points
from facecap.units import unit_scale
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def demo() -> tuple[Rig, Decimation]:
    rig = build_demo_head(DemoHeadConfig(resolution=0.75, texture_size=64))
    return rig, decimate_rig(rig, 1500)


@pytest.fixture(scope="module")
def ict() -> tuple[Rig, Decimation]:
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    return rig, decimate_rig(rig, 2500)


def _random_poses(rig: Rig, rng: np.random.Generator, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sparse random weights in [0, 1] and random identities (σ = 1), as a fit meets them."""
    K = rig.num_shapes
    return [(rng.uniform(0, 1, K) * (rng.random(K) < 0.3), rng.normal(size=rig.num_identities)) for _ in range(count)]


def _surface_gaps_mm(rig: Rig, dec: Decimation, rng: np.random.Generator, poses: int = 3) -> list[np.ndarray]:
    """Per pose: distances (mm) from points spread over each face region to the other mesh, both ways."""
    new, mm = dec.rig, unit_scale(rig.units, "mm")
    out = []
    for w, identity in _random_poses(rig, rng, poses):
        A = evaluate_rig(rig, w[None], identity)[0]
        B = evaluate_rig(new, w[None], identity)[0]
        points_new = surface_points(B, new.faces[new.face_region_faces()], 5000, rng)[0]
        points_old = surface_points(A, rig.faces[rig.face_region_faces()], 5000, rng)[0]
        out.append(np.concatenate([closest_points_on_mesh(points_new, A, rig.faces[rig.opaque_faces()])[2],
                                   closest_points_on_mesh(points_old, B, new.faces[new.opaque_faces()])[2]]) * mm)
    return out


def _check_vertices_on_original(rig: Rig, dec: Decimation, rng: np.random.Generator) -> None:
    """Every new vertex is its source point of the original posed surface, at any weights and identity."""
    for w, identity in _random_poses(rig, rng, 2):
        A = evaluate_rig(rig, w[None], identity)[0]
        B = evaluate_rig(dec.rig, w[None], identity)[0]
        at_source = np.einsum("nk,nkd->nd", dec.source_barycentrics, A[rig.faces[dec.source_triangle]])
        np.testing.assert_allclose(B, at_source, atol=1e-9)
        np.testing.assert_allclose(B[dec.rig.landmark_vertices], A[rig.landmark_vertices], atol=1e-9)


def _pieces(rig: Rig, material: int) -> int:
    faces = rig.faces[rig.face_material == material]
    graph = sp.csr_matrix((np.ones(faces.size), (faces.ravel(), np.roll(faces, 1, axis=1).ravel())),
                          shape=(rig.num_vertices,) * 2)
    labels = connected_components(graph, directed=False)[1]
    return len(np.unique(labels[faces[:, 0]]))


def _check_orientation(rig: Rig, dec: Decimation) -> None:
    """New triangles face the way the original surface does under them (a few, where lips touch, may not)."""
    def normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        c = vertices[faces]
        return np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0])
    new = dec.rig
    under = normals(rig.neutral, rig.faces)[dec.source_triangle]                # at each new vertex
    agree = np.einsum("nd,nd->n", normals(new.neutral, new.faces), under[new.faces].sum(1)) > 0
    assert agree.mean() > 0.995


def _check_uvs(rig: Rig, dec: Decimation) -> None:
    """Corner UVs are the original's at the vertex (but for corners across a seam from their triangle), and
    new triangles do not span UV seams: their UV lengths per surface length stay like the original's."""
    new = dec.rig
    source_uv = np.einsum("nk,nkd->nd", dec.source_barycentrics, rig.uv[rig.uv_faces[dec.source_triangle]])
    exact = np.linalg.norm(new.uv[new.uv_faces] - source_uv[new.faces], axis=-1) < 1e-9
    assert exact[new.face_region_faces()].mean() > 0.95

    def span(r: Rig) -> np.ndarray:                     # UV length per unit of surface length, longest edge
        uv, xyz = r.uv[r.uv_faces], r.neutral[r.faces]
        return (np.linalg.norm(uv - np.roll(uv, 1, axis=1), axis=-1).max(1)
                / np.linalg.norm(xyz - np.roll(xyz, 1, axis=1), axis=-1).max(1))
    assert (span(new) > np.percentile(span(rig), 99.9)).mean() < 0.01


def test_demo_head_decimates_to_the_asked_count(demo, tmp_path):
    rig, dec = demo
    new = dec.rig
    assert 1485 <= dec.face_vertices <= 1500 == 1500
    assert dec.face_vertices == len(np.unique(new.faces[new.face_region_faces()]))
    assert new.num_shapes == rig.num_shapes and new.num_identities == rig.num_identities
    assert new.num_correctives == rig.num_correctives and new.material_names == rig.material_names
    for m in range(len(rig.material_names)):                  # the mouth pouch survives as its own part
        assert _pieces(new, m) == _pieces(rig, m)
    save_rig(new, tmp_path / "sparse.npz")
    back = load_rig(tmp_path / "sparse.npz")
    np.testing.assert_allclose(back.shape_deltas, new.shape_deltas, atol=1e-5)
    np.testing.assert_array_equal(back.landmark_vertices, new.landmark_vertices)
    np.testing.assert_array_equal(back.uv_faces, new.uv_faces)


def test_demo_head_keeps_its_surface_landmarks_and_uvs(demo, rng):
    rig, dec = demo
    _check_vertices_on_original(rig, dec, rng)
    for gaps in _surface_gaps_mm(rig, dec, rng):
        assert gaps.mean() < 0.25 and np.percentile(gaps, 99) < 1.5
    _check_orientation(rig, dec)
    _check_uvs(rig, dec)


def test_ict_decimates_to_2500_face_vertices(ict, rng):
    rig, dec = ict
    new = dec.rig
    assert 2475 <= dec.face_vertices <= 2500
    for m in range(len(rig.material_names)):                  # eyeballs, lashes, teeth stay as many parts
        assert _pieces(new, m) == _pieces(rig, m), rig.material_names[m]
    _check_vertices_on_original(rig, dec, rng)
    for gaps in _surface_gaps_mm(rig, dec, rng):
        assert gaps.mean() < 0.25 and np.percentile(gaps, 99) < 1.5
    _check_orientation(rig, dec)
    _check_uvs(rig, dec)


def test_asking_too_many_or_too_few_vertices_fails(demo):
    rig, _ = demo
    with pytest.raises(FacecapError, match="face region has"):
        decimate_rig(rig, rig.num_vertices)
    with pytest.raises(FacecapError, match="at least 3"):
        decimate_rig(rig, 2)


def test_a_bare_rig_decimates(demo, rng):
    """No materials, UVs, landmarks or texture: one piece, the same guarantees on the surface."""
    rig = demo[0].replace(uv=None, uv_faces=None, face_material=None, material_names=(), material_opaque=None,
                          landmark_scheme="", landmark_vertices=None, texture=None)
    dec = decimate_rig(rig, 800)
    assert 792 <= dec.rig.num_vertices <= 800 and dec.rig.uv is None and dec.rig.landmark_vertices is None
    w, identity = _random_poses(rig, rng, 1)[0]
    at_source = np.einsum("nk,nkd->nd", dec.source_barycentrics,
                          evaluate_rig(rig, w[None], identity)[0][rig.faces[dec.source_triangle]])
    np.testing.assert_allclose(evaluate_rig(dec.rig, w[None], identity)[0], at_source, atol=1e-9)
