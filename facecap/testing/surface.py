"""Distances from points to a triangle mesh, for tests that compare two surfaces."""

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from facecap.geometry.triangles import closest_point_barycentrics

__all__ = ["closest_points_on_mesh", "surface_points"]


def closest_points_on_mesh(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                           neighbours: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest point of the mesh to each of ``points`` [n, 3]: triangle [n], barycentrics [n, 3], distance [n].

    Candidates are the triangles around the ``neighbours`` nearest vertices, so a reported distance is
    never below the true one (and equals it on any mesh whose triangles are not much longer than the
    gaps between those vertices).
    """
    k = min(neighbours, len(vertices))
    near = cKDTree(vertices).query(points, k)[1].reshape(len(points), k)
    incidence = sp.csr_matrix((np.ones(faces.size), (faces.ravel(), np.repeat(np.arange(len(faces)), 3))),
                              shape=(len(vertices), len(faces)))
    pick = sp.csr_matrix((np.ones(near.size), (np.repeat(np.arange(len(points)), k), near.ravel())),
                         shape=(len(points), len(vertices)))
    pairs = (pick @ incidence).tocoo()
    point, tri = pairs.row, pairs.col
    corners = vertices[faces[tri]]
    bary = closest_point_barycentrics(points[point], corners[:, 0], corners[:, 1], corners[:, 2])
    distance = np.linalg.norm(np.einsum("nk,nkd->nd", bary, corners) - points[point], axis=-1)
    order = np.lexsort((distance, point))
    first = order[np.unique(point[order], return_index=True)[1]]
    return tri[first], bary[first], distance[first]


def surface_points(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` points spread uniformly over the mesh's area: [count, 3], their triangles and barycentrics."""
    corners = vertices[faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=-1)
    tri = rng.choice(len(faces), count, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], -1)
    return np.einsum("nk,nkd->nd", bary, corners[tri]), tri, bary
