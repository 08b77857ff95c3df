"""A sparse rig from a dense one: quadric decimation of the neutral, every per-vertex quantity carried along.

Each connected piece of each material is decimated on its own by quadric edge collapse (Garland and
Heckbert 1997, through the ``fast-simplification`` package), all at one ratio of triangles, chosen so that
the face region (:meth:`Rig.face_region_faces`) keeps as many vertices as asked. Parts that are separate
materials (eyeballs, lashes, teeth, a mouth pouch) stay separate parts. Where two materials meet, the border's
vertices are kept as they are (no edge that touches them collapses), so the materials still meet
without cracks; this also keeps the other open borders of those materials.

A collapse merges an original vertex into a surviving one, so every new vertex stands for a patch of
the original surface: the triangles around the original vertices merged into it. The new vertex is
moved onto the nearest point of that patch, and its shape, corrective and identity offsets are the
barycentric interpolation of the original offsets there, so at any weights and identity every new
vertex lies exactly on the original posed surface. Looking only within the patch keeps a vertex of
the upper lip on the upper lip, although the lower lip may be nearer.

Landmarks move onto new vertices: each landmark's new vertex is placed exactly at the original
landmark vertex (with its offsets), so landmarks stay exact; a second landmark in the same patch, or one
whose move would turn a triangle over, takes a free neighbour of that vertex. UVs follow the same closest
points, on the side of any UV seam where the new triangle's centroid lies, so that UV seams stay seams. The
texture is kept.
"""

import logging
from dataclasses import dataclass

import fast_simplification
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from facecap.errors import FacecapError
from facecap.geometry.triangles import closest_point_barycentrics
from facecap.rig.model import Rig

__all__ = ["Decimation", "decimate_rig", "MIN_PART_TRIANGLES"]

log = logging.getLogger(__name__)

MIN_PART_TRIANGLES = 8   # a connected piece keeps at least this many triangles, so that none vanishes
SEARCH_STEPS = 16        # decimations tried while searching the ratio that gives the asked face vertices
COUNT_TOLERANCE = 0.01   # the search stops within this fraction below the asked count
# A corner's UV counts as on its triangle's side of any UV seam when it lies within this many times the
# UV length that the corner's distance from the centroid spans on the original triangle under the centroid.
UV_REACH = 3.0


@dataclass(frozen=True)
class Decimation:
    """A decimated rig and where its vertices come from on the original.

    Attributes:
        rig: the decimated rig.
        source_triangle: [V'] the original triangle each new vertex lies on.
        source_barycentrics: [V', 3] its barycentrics there (the new vertex is that point of the
            original surface at any weights and identity).
        face_vertices: vertices of the new rig's face region.
    """

    rig: Rig
    source_triangle: np.ndarray
    source_barycentrics: np.ndarray
    face_vertices: int


@dataclass(frozen=True)
class _Part:
    """One connected piece of one material's triangles, decimated on its own. ``vertices``: [Vp] its sorted
    original vertex indices; ``keep_border``: it meets another material, so its open borders stay whole."""

    material: int
    triangles: np.ndarray
    vertices: np.ndarray
    keep_border: bool


@dataclass(frozen=True)
class _Collapsed:
    """A decimated part in original vertex indices: ``survivors`` [S] the original vertices that survived,
    sorted, at ``points`` [S, 3] (where the collapses moved them); ``faces`` [F', 3] name each corner by its
    survivor; ``root`` [Vp] gives the survivor each of the part's vertices merged into."""

    part: _Part
    survivors: np.ndarray
    points: np.ndarray
    faces: np.ndarray
    root: np.ndarray


def _parts(rig: Rig) -> list[_Part]:
    """Every connected piece of every material (all triangles count as one material when the rig has none)."""
    material = rig.face_material if rig.face_material is not None else np.zeros(len(rig.faces), np.int64)
    groups = [np.flatnonzero(material == m) for m in np.unique(material)]
    # A vertex used by two materials lies on a border between them.
    owners = np.zeros(rig.num_vertices, np.int64)
    for tris in groups:
        owners[np.unique(rig.faces[tris])] += 1
    parts = []
    for tris in groups:
        faces = rig.faces[tris]
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
        graph = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(rig.num_vertices,) * 2)
        piece = connected_components(graph, directed=False)[1][faces[:, 0]]
        for p in np.unique(piece):
            part_tris = tris[piece == p]
            vertices = np.unique(rig.faces[part_tris])
            parts.append(_Part(int(material[tris[0]]), part_tris, vertices, bool((owners[vertices] > 1).any())))
    return parts


def _collapse(rig: Rig, part: _Part, ratio: float) -> _Collapsed:
    """Decimate one piece to ``ratio`` of its triangles (at least MIN_PART_TRIANGLES; more where a thin piece
    would otherwise lose a vertex to no triangle)."""
    local = np.searchsorted(part.vertices, rig.faces[part.triangles]).astype(np.int32)
    target = max(MIN_PART_TRIANGLES, int(round(ratio * len(local))))
    while target < len(local):
        points, faces, collapses = fast_simplification.simplify(
            rig.neutral[part.vertices], local, target_count=target, preserve_border=part.keep_border,
            return_collapses=True)
        root = np.arange(len(part.vertices))
        root[collapses[:, 1]] = collapses[:, 0]                   # collapse [i0, i1]: i1 merged into i0
        while not np.array_equal(root[root], root):              # follow chains of merges to their survivor
            root = root[root]
        survivors = np.flatnonzero(root == np.arange(len(root)))  # in order: the simplifier keeps vertex order
        if len(survivors) == len(points):
            return _Collapsed(part, part.vertices[survivors], points, part.vertices[survivors[faces]],
                              part.vertices[root])
        target *= 2
    return _Collapsed(part, part.vertices, rig.neutral[part.vertices], part.vertices[local], part.vertices)


def _face_count(collapsed: list[_Collapsed], face_materials: set[int]) -> int:
    faces = [c.faces for c in collapsed if c.part.material in face_materials]
    return len(np.unique(np.concatenate(faces))) if faces else 0


def _search_ratio(rig: Rig, parts: list[_Part], face_vertices: int) -> float:
    """The triangle ratio whose decimation leaves the face region nearest below ``face_vertices`` vertices."""
    region = rig.face_region_faces()
    material = rig.face_material if rig.face_material is not None else np.zeros(len(rig.faces), np.int64)
    face_materials = set(np.unique(material[region]).tolist())
    face_parts = [p for p in parts if p.material in face_materials]
    have = len(np.unique(rig.faces[region]))
    if face_vertices >= have:
        raise FacecapError(f"the rig's face region has {have} vertices; ask for fewer than that, got {face_vertices}")
    lo, hi, ratio = 0.0, 1.0, face_vertices / have
    best, best_count, fewest = None, -1, have
    for _ in range(SEARCH_STEPS):
        count = _face_count([_collapse(rig, p, ratio) for p in face_parts], face_materials)
        fewest = min(fewest, count)
        if count <= face_vertices:
            if count > best_count:
                best, best_count = ratio, count
            if face_vertices - count <= COUNT_TOLERANCE * face_vertices:
                break
            lo = ratio
        else:
            hi = ratio
        guess = ratio * face_vertices / max(count, 1)                  # counts grow about linearly with the ratio
        ratio = guess if lo < guess < hi else (lo + hi) / 2
    if best is None:
        raise FacecapError(f"the face region keeps at least {fewest} vertices (its material borders stay whole); "
                           f"ask for more than {face_vertices}")
    return best


def _nearest(group: np.ndarray, triangles: np.ndarray, query: np.ndarray, neutral: np.ndarray,
             faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each group g, the nearest point to ``query[g]`` on its candidate triangles (pairs ``group``,
    ``triangles`` [n]): -> triangle [G], barycentrics [G, 3]. Every group needs a candidate."""
    corners = neutral[faces[triangles]]                                            # [n, 3, 3]
    bary = closest_point_barycentrics(query[group], corners[:, 0], corners[:, 1], corners[:, 2])
    distance = np.linalg.norm(np.einsum("nk,nkd->nd", bary, corners) - query[group], axis=-1)
    order = np.lexsort((distance, group))
    first = order[np.unique(group[order], return_index=True)[1]]
    return triangles[first], bary[first]


def _interpolate(values: np.ndarray, corners: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """[..., V, 3] per-vertex values at points (corners [n, 3] vertex indices, barycentrics [n, 3]) -> [..., n, 3]."""
    return np.einsum("...nkd,nk->...nd", values[..., corners, :], bary)


def _place_landmarks(rig: Rig, keys: np.ndarray, root: np.ndarray, faces: np.ndarray, source: np.ndarray,
                     bary: np.ndarray) -> np.ndarray:
    """[L] new vertex of each landmark; moves that vertex's source (in place) onto the landmark vertex.

    The vertex is the one the landmark merged into, or one of its neighbours that no other landmark holds:
    of those, the one whose move turns fewest triangles against the surface, then the landmark's own, then
    the nearest.
    """
    incident = np.full(rig.num_vertices, -1)
    incident[rig.faces.ravel()] = np.repeat(np.arange(len(rig.faces)), 3)
    lost = [int(v) for v in rig.landmark_vertices if incident[v] < 0]
    if lost:
        raise FacecapError(f"landmark vertices {lost[:5]} lie on no triangle; they cannot be carried")
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    ring = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(keys),) * 2)
    ring = (ring + ring.T).tocsr()
    star = sp.csr_matrix((np.ones(faces.size), (faces.ravel(), np.repeat(np.arange(len(faces)), 3))),
                         shape=(len(keys), len(faces)))
    position = _interpolate(rig.neutral, rig.faces[source], bary)

    under = np.cross(*np.moveaxis(np.diff(rig.neutral[rig.faces], axis=1), 1, 0))[source]   # surface normal per vertex

    def misturned(new: int, target: np.ndarray) -> int:
        """How many of ``new``'s triangles face against the surface under them once it moves to ``target``."""
        tris = faces[star[new].indices]
        corners = position[tris]
        corners[tris == new] = target
        normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        return int((np.einsum("nd,nd->n", normal, under[tris].sum(1)) <= 0).sum())

    owner: dict[int, int] = {}                       # new vertex -> the original landmark vertex it holds
    out = np.empty(len(rig.landmark_vertices), np.int64)
    for i, v in enumerate(rig.landmark_vertices.tolist()):
        merged = int(np.searchsorted(keys, root[v]))
        if owner.get(merged) == v:
            out[i] = merged
            continue
        target = rig.neutral[v]
        options = [n for n in [merged, *ring[merged].indices] if n not in owner]
        if not options:
            raise FacecapError(f"landmark {i} (vertex {v}) finds no free decimated vertex; ask for more vertices")
        new = min(options, key=lambda n: (misturned(n, target) - misturned(n, position[n]), n != merged,
                                          np.linalg.norm(position[n] - target)))
        owner[new] = v
        tri = incident[v]
        source[new], bary[new] = tri, (rig.faces[tri] == v).astype(np.float64)
        position[new] = target
        out[i] = new
    return out


def _uv_charts(rig: Rig) -> np.ndarray:
    """[F] UV chart of each triangle: triangles joined through edges whose ends share UV coordinates."""
    corners = np.stack([rig.faces, rig.uv_faces], -1)                                  # [F, 3, 2]
    ends = np.concatenate([corners[:, [0, 1]], corners[:, [1, 2]], corners[:, [2, 0]]])  # [3F, 2 ends, 2]
    flip = ends[:, 0, 0] > ends[:, 1, 0]
    ends[flip] = ends[flip][:, ::-1]
    _, edge = np.unique(ends.reshape(len(ends), 4), axis=0, return_inverse=True)
    triangle = np.tile(np.arange(len(rig.faces)), 3)
    graph = sp.csr_matrix((np.ones(len(edge)), (triangle, edge.ravel())))
    return connected_components(graph @ graph.T, directed=False)[1]


def _carry_uvs(rig: Rig, faces: np.ndarray, material: np.ndarray, neutral: np.ndarray, candidate_start: np.ndarray,
               candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New UVs [U', 2] and uv_faces [F', 3].

    A new triangle reads its UVs from the original triangles around its three vertices, in the chart under
    its centroid. Each corner takes the UV of the point nearest its vertex, unless that UV lies farther
    from the centroid's than a continuous map could take it (:data:`UV_REACH`): across a UV seam (also a
    slit within one chart) the excess counts as distance, so the corner reads the centroid's side of the
    seam and a new triangle never spans the atlas.
    """
    chart = _uv_charts(rig)
    corners = rig.uv[rig.uv_faces]
    edge_xyz = np.linalg.norm(rig.neutral[rig.faces] - np.roll(rig.neutral[rig.faces], 1, axis=1), axis=-1)
    edge_uv = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1)
    uv_per_length = (edge_uv / np.maximum(edge_xyz, 1e-30)).max(1)                 # [F] the steepest edge's
    count = np.diff(candidate_start)
    per_face = count[faces].sum(1)
    face_of = np.repeat(np.arange(len(faces)), per_face)                            # (face, candidate) pairs
    corner_vertex = np.repeat(faces.ravel(), count[faces.ravel()])
    offsets = np.arange(len(corner_vertex)) - np.repeat(np.cumsum(count[faces.ravel()]) - count[faces.ravel()],
                                                        count[faces.ravel()])
    tris = candidates[candidate_start[corner_vertex] + offsets]
    if rig.face_material is not None:
        keep = rig.face_material[tris] == material[face_of]
        face_of, tris = face_of[keep], tris[keep]
    centroid = neutral[faces].mean(1)
    centre_tri, centre_bary = _nearest(face_of, tris, centroid, rig.neutral, rig.faces)
    centre_uv = np.einsum("nk,nkd->nd", centre_bary, corners[centre_tri])
    same = chart[tris] == chart[centre_tri][face_of]
    face_of, tris = face_of[same], tris[same]
    corner = (3 * face_of[:, None] + np.arange(3)).ravel()                          # (corner, candidate) pairs
    tris = np.repeat(tris, 3)
    points = neutral[faces.ravel()[corner]]
    tri_corners = rig.neutral[rig.faces[tris]]
    bary = closest_point_barycentrics(points, tri_corners[:, 0], tri_corners[:, 1], tri_corners[:, 2])
    uv = np.einsum("nk,nkd->nd", bary, corners[tris])
    face = corner // 3
    steep = np.maximum(uv_per_length[centre_tri][face], 1e-30)
    reach = UV_REACH * steep * np.linalg.norm(points - centroid[face], axis=-1)
    excess = np.maximum(np.linalg.norm(uv - centre_uv[face], axis=-1) - reach, 0)
    score = np.linalg.norm(np.einsum("nk,nkd->nd", bary, tri_corners) - points, axis=-1) + excess / steep
    order = np.lexsort((score, corner))
    best = order[np.unique(corner[order], return_index=True)[1]]
    corner_uv = uv[best]                                                            # [3 F'] in corner order
    keys, uv_index = np.unique(np.column_stack([faces.ravel(), corner_uv]), axis=0, return_inverse=True)
    return keys[:, 1:], uv_index.reshape(-1, 3).astype(np.int32)


def decimate_rig(rig: Rig, face_vertices: int) -> Decimation:
    """Decimate ``rig`` so that its face region keeps at most ``face_vertices`` vertices (as near as the
    search gets, within 1 %); every material is decimated at the same ratio of triangles.

    Raises FacecapError when the face region has no more vertices than asked, or when its material
    borders alone hold more.
    """
    if face_vertices < 3:
        raise FacecapError(f"ask for at least 3 face vertices, got {face_vertices}")
    parts = _parts(rig)
    ratio = _search_ratio(rig, parts, face_vertices)
    collapsed = [_collapse(rig, p, ratio) for p in parts]
    keys = np.unique(np.concatenate([c.survivors for c in collapsed]))       # survivors, by original index
    faces = np.searchsorted(keys, np.concatenate([c.faces for c in collapsed]))
    material = np.concatenate([np.full(len(c.faces), c.part.material) for c in collapsed])
    root = np.full(rig.num_vertices, -1)
    pairs = []                                     # (new vertex, original triangle): the patch of each new vertex
    for c in collapsed:
        root[c.part.vertices] = c.root
        corner_root = c.root[np.searchsorted(c.part.vertices, rig.faces[c.part.triangles])]
        pairs.append(np.stack([np.searchsorted(keys, corner_root).ravel(),
                               np.repeat(c.part.triangles, 3)], -1))
    pairs = np.unique(np.concatenate(pairs), axis=0)
    qem_position = np.zeros((len(keys), 3))
    for c in collapsed:
        qem_position[np.searchsorted(keys, c.survivors)] = c.points
    source, bary = _nearest(pairs[:, 0], pairs[:, 1], qem_position, rig.neutral, rig.faces)
    landmarks = None
    if rig.landmark_vertices is not None:
        landmarks = _place_landmarks(rig, keys, root, faces, source, bary).astype(np.int32)
    corners = rig.faces[source]
    neutral = _interpolate(rig.neutral, corners, bary)
    uv = uv_faces = None
    if rig.uv is not None:
        start = np.searchsorted(pairs[:, 0], np.arange(len(keys) + 1))
        uv, uv_faces = _carry_uvs(rig, faces, material, neutral, start, pairs[:, 1])
    new = Rig(units=rig.units, neutral=neutral, faces=faces.astype(np.int32), shape_names=rig.shape_names,
              shape_deltas=_interpolate(rig.shape_deltas, corners, bary), corrective_keys=rig.corrective_keys,
              corrective_deltas=_interpolate(rig.corrective_deltas, corners, bary),
              identity_deltas=_interpolate(rig.identity_deltas, corners, bary), uv=uv, uv_faces=uv_faces,
              face_material=None if rig.face_material is None else material.astype(np.int16),
              material_names=rig.material_names, material_opaque=rig.material_opaque,
              landmark_scheme=rig.landmark_scheme if landmarks is not None else "", landmark_vertices=landmarks,
              texture=rig.texture)
    count = len(np.unique(new.faces[new.face_region_faces()]))
    log.info("decimated %d -> %d vertices (face region %d), %d -> %d triangles", rig.num_vertices, new.num_vertices,
             count, len(rig.faces), len(new.faces))
    return Decimation(new, source, bary, count)
