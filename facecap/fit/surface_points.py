"""Where the photometric term reads colours: points laid over the sampled triangles at a chosen spacing.

A rig's vertices are as dense as its modeller made them, not as the images: ICT's face has a vertex every
few pixels of an 800x600 view, a tracking rig of a few thousand vertices one every ten or twenty. The fit
reads the image at fixed points of the surface instead: the vertices of the sampled triangles, then points
on every edge longer than ``spacing`` (the edge cut into equal pieces no longer than it) and inside every
triangle whose longest edge is (a lattice of that edge's resolution), as mesh colours lay their texels
(Yuksel, Keyser and House, "Mesh Colors", 2010). A point is the barycentric combination of its triangle's
corners, so it moves with the mesh at any weights, pose and identity, and every view that sees it reads the
same point of the skin: the views' colours must agree there, which is what pins the geometry.
"""

from dataclasses import dataclass

import numpy as np

from facecap.errors import FacecapError

__all__ = ["SurfacePoints", "lay_surface_points"]


@dataclass(frozen=True)
class SurfacePoints:
    """Points of a mesh's surface, each a barycentric combination of three vertices.

    Attributes:
        corners: [N, 3] int64 vertex indices (a vertex point repeats its vertex).
        weights: [N, 3] float64 barycentric weights, summing to 1.
        num_vertex_points: how many of the points (the first ones) are the sampled vertices themselves.
    """

    corners: np.ndarray
    weights: np.ndarray
    num_vertex_points: int

    def __len__(self) -> int:
        return len(self.corners)

    def positions(self, vertices: np.ndarray) -> np.ndarray:
        """[N, 3] the points on a mesh whose vertices are ``vertices`` [V, 3]."""
        return (vertices[self.corners] * self.weights[..., None]).sum(1)


def _edge_points(positions: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Corners [n, 3] and weights [n, 3] of the points inside the edges of ``faces``, none more than ``spacing``
    apart."""
    edges = np.unique(np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1), axis=0)
    length = np.linalg.norm(positions[edges[:, 0]] - positions[edges[:, 1]], axis=1)
    pieces = np.ceil(length / spacing).astype(np.int64).clip(min=1)
    edge = np.repeat(np.arange(len(edges)), pieces - 1)
    k = np.arange(len(edge)) - np.repeat(np.cumsum(pieces - 1) - (pieces - 1), pieces - 1) + 1
    t = k / pieces[edge]
    corners = np.stack([edges[edge, 0], edges[edge, 1], edges[edge, 0]], 1)
    return corners, np.stack([1 - t, t, np.zeros_like(t)], 1)


def _interior_points(positions: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Corners [n, 3] and weights [n, 3] of lattice points strictly inside the triangles ``faces``: a triangle
    whose longest edge is cut into r pieces of at most ``spacing`` gets the (r - 1)(r - 2) / 2 points whose
    barycentrics are multiples of 1 / r."""
    corners = positions[faces]
    longest = np.linalg.norm(corners - corners[:, [1, 2, 0]], axis=-1).max(1)
    resolution = np.ceil(longest / spacing).astype(np.int64)
    found_corners, found_weights = [np.zeros((0, 3), np.int64)], [np.zeros((0, 3))]
    for r in np.unique(resolution[resolution >= 3]):
        i, j = np.meshgrid(np.arange(1, r), np.arange(1, r), indexing="ij")
        inside = i + j <= r - 1
        lattice = np.stack([r - i[inside] - j[inside], i[inside], j[inside]], 1) / r        # [m, 3]
        tris = faces[resolution == r]
        found_corners.append(np.repeat(tris, len(lattice), axis=0))
        found_weights.append(np.tile(lattice, (len(tris), 1)))
    return np.concatenate(found_corners), np.concatenate(found_weights)


def lay_surface_points(positions: np.ndarray, faces: np.ndarray, vertices: np.ndarray,
                       spacing: float) -> SurfacePoints:
    """Points over the triangles ``faces`` [F, 3] of a mesh at rest ``positions`` [V, 3], at most ``spacing`` apart
    along edges and lattice rows.

    ``vertices`` [N'] (every corner of ``faces``, in the order the caller keeps them) come first, then the
    points inside edges, then those inside triangles. ``spacing`` is in the positions' units; infinity lays
    the vertices alone.
    """
    if not spacing > 0:
        raise FacecapError(f"surface point spacing must be > 0, got {spacing}")
    vertices = np.asarray(vertices, dtype=np.int64)
    faces = np.asarray(faces, dtype=np.int64)
    if not np.isin(faces, vertices).all():
        raise FacecapError("every corner of the sampled triangles must be among the sampled vertices")
    own = (np.repeat(vertices[:, None], 3, 1), np.tile([1.0, 0.0, 0.0], (len(vertices), 1)))
    parts = [own, _edge_points(positions, faces, spacing), _interior_points(positions, faces, spacing)]
    return SurfacePoints(np.concatenate([c for c, _ in parts]), np.concatenate([w for _, w in parts]), len(vertices))
