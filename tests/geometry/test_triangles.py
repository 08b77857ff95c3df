"""Closest points on triangles against a dense search over each triangle."""

import numpy as np

from facecap.geometry.triangles import closest_point_barycentrics


def test_closest_point_matches_a_dense_search(rng):
    n = 300
    a, b, c = (rng.normal(size=(n, 3)) for _ in range(3))
    p = rng.normal(size=(n, 3)) * 2
    bary = closest_point_barycentrics(p, a, b, c)
    assert np.all(bary >= -1e-12) and np.allclose(bary.sum(1), 1)
    found = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    # Every point of a fine barycentric grid is at least as far: the found point is the nearest.
    s, t = np.meshgrid(np.linspace(0, 1, 201), np.linspace(0, 1, 201))
    inside = s + t <= 1
    s, t = s[inside], t[inside]
    grid = a[:, None] + s[None, :, None] * (b - a)[:, None] + t[None, :, None] * (c - a)[:, None]
    dense = np.linalg.norm(grid - p[:, None], axis=-1).min(1)
    found_distance = np.linalg.norm(found - p, axis=-1)
    assert np.all(found_distance <= dense + 1e-12)
    np.testing.assert_allclose(found_distance, dense, atol=0.02)


def test_regions_vertex_edge_interior():
    a, b, c = np.array([[0.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]])
    cases = {(-1.0, -1.0, 3.0): [1, 0, 0], (2.0, -0.5, 0.0): [0, 1, 0], (0.5, -1.0, 1.0): [0.5, 0.5, 0],
             (1.0, 1.0, 0.0): [0, 0.5, 0.5], (0.25, 0.25, -2.0): [0.5, 0.25, 0.25]}
    for point, expected in cases.items():
        np.testing.assert_allclose(closest_point_barycentrics(np.array([point]), a, b, c)[0], expected, atol=1e-12)
