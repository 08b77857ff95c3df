"""Surface points laid over triangles: where they lie and how far apart."""

import numpy as np
import pytest

from facecap.errors import FacecapError
from facecap.fit.surface_points import lay_surface_points
from facecap.rig import build_demo_head


def _triangle_points(spacing: float):
    """One right triangle with legs 4 and 3 (hypotenuse 5), and its points at ``spacing``."""
    positions = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    faces = np.array([[0, 1, 2]])
    return positions, lay_surface_points(positions, faces, np.array([0, 1, 2]), spacing)


def test_a_triangle_gets_its_vertices_then_edge_and_lattice_points():
    positions, points = _triangle_points(1.0)
    # Edges of 4, 3 and 5 cut into pieces of at most 1: 3 + 2 + 4 inner points; the interior is the lattice of
    # the longest edge's resolution 5: (5 - 1)(5 - 2) / 2 = 6 points.
    assert points.num_vertex_points == 3 and len(points) == 3 + 9 + 6
    np.testing.assert_array_equal(points.corners[:3], [[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    np.testing.assert_allclose(points.weights.sum(1), 1.0)
    assert (points.weights >= 0).all()
    xyz = points.positions(positions)
    assert np.abs(xyz[:, 2]).max() == 0 and (xyz[:, :2] >= 0).all()
    assert (xyz[:, 0] / 4 + xyz[:, 1] / 3 <= 1 + 1e-12).all()
    on_edges = xyz[3:12]
    on_hypotenuse = np.abs(on_edges[:, 0] / 4 + on_edges[:, 1] / 3 - 1) < 1e-12
    assert on_hypotenuse.sum() == 4 and (np.abs(on_edges[~on_hypotenuse]).min(1) < 1e-12).all()
    assert len(np.unique(xyz.round(9), axis=0)) == len(xyz)                      # no point twice
    # Along every edge the points cut it into equal pieces no longer than the spacing.
    for a, b in ((0, 1), (1, 2), (2, 0)):
        direction = positions[b] - positions[a]
        along = (xyz - positions[a]) @ direction / (direction @ direction)
        off = np.linalg.norm(xyz - positions[a] - along[:, None] * direction, axis=1)
        stops = np.sort(along[(off < 1e-9) & (along > -1e-12) & (along < 1 + 1e-12)])
        gaps = np.diff(stops) * np.linalg.norm(direction)
        assert gaps.max() <= 1.0 + 1e-12 and np.ptp(gaps) < 1e-9


def test_no_point_is_far_from_the_nearest_other():
    """Over a whole head, every point of the surface lies within the spacing of a laid point (checked at random
    points of the triangles), and an infinite spacing lays the vertices alone."""
    rig = build_demo_head()
    faces = rig.faces[rig.opaque_faces()]
    vertices = np.unique(faces)
    spacing = 0.3                                                 # cm: about the median edge
    points = lay_surface_points(rig.neutral, faces, vertices, spacing)
    assert points.num_vertex_points == len(vertices) and np.array_equal(points.corners[:len(vertices), 0], vertices)
    assert len(points) > len(vertices)
    rng = np.random.default_rng(0)
    b = rng.dirichlet(np.ones(3), 2000)
    probe = (rig.neutral[faces[rng.integers(0, len(faces), 2000)]] * b[..., None]).sum(1)
    from scipy.spatial import cKDTree
    distance, _ = cKDTree(points.positions(rig.neutral)).query(probe)
    assert distance.max() < spacing
    alone = lay_surface_points(rig.neutral, faces, vertices, np.inf)
    assert len(alone) == len(vertices)


def test_bad_layouts_are_refused():
    positions, _ = _triangle_points(1.0)
    with pytest.raises(FacecapError, match="spacing"):
        lay_surface_points(positions, np.array([[0, 1, 2]]), np.array([0, 1, 2]), 0.0)
    with pytest.raises(FacecapError, match="corner"):
        lay_surface_points(positions, np.array([[0, 1, 2]]), np.array([0, 1]), 1.0)
