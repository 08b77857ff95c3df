"""The demo head's mesh: a (polar angle, azimuth) grid cast onto the SDF, a mouth slit and a mouth bag.

Rays leave HEAD_CENTRE along d(theta, phi) = (sin th sin ph, cos th, sin th cos ph): theta from +y
(crown) down to the neck, phi = 0 looking at the face, phi > 0 towards +x. Rows and columns are
spaced more densely over the face (inverse-CDF warp of a density). The grid row at the mouth's
polar angle is split between the mouth corners (upper and lower lip copies of each vertex), and
the hole is closed by a pouch (the mouth interior) so that opening the jaw shows a cavity.
UVs are the grid parameters themselves, (u, v) = (column / columns, 1 - row share), so the texture
can be painted by interpolating positions over the grid; the seam at the back duplicates UVs only.
"""

from dataclasses import dataclass

import numpy as np

from facecap.rig.demo.sdf import HEAD_CENTRE, MOUTH_HALF_WIDTH, head_sdf, mouth_polar_angle

__all__ = ["HeadMesh", "build_head_mesh", "MOUTH_UV_STRIP", "UPPER_LIP", "LOWER_LIP", "MOUTH_CORNER"]

THETA_TOP, THETA_NECK = 0.04, 2.72  # rad; first grid row below the crown pole, last row (open neck)
_FACE_THETA, _FACE_THETA_WIDTH, _FACE_THETA_BOOST = 1.45, 0.5, 2.2  # rows crowd around the face
_FACE_PHI_WIDTH, _FACE_PHI_BOOST = 0.75, 2.6                         # columns crowd around phi = 0
_RAY_NEAR, _RAY_FAR, _BISECTIONS = 2.0, 26.0, 15  # cm; bracket of the surface along each ray
MOUTH_UV_STRIP = 0.05  # the band v in [0, MOUTH_UV_STRIP) of the texture holds the mouth interior
_BAG_RINGS = 6  # rings of the mouth pouch behind the lips
_BAG_DEPTH, _BAG_HEIGHT = 3.0, 1.1  # cm; pouch depth behind the lips and half-height at the back
UPPER_LIP, LOWER_LIP, MOUTH_CORNER = 1, -1, 2  # HeadMesh.lip_side labels (0: elsewhere)


@dataclass(frozen=True)
class HeadMesh:
    """Neutral mesh with its grid bookkeeping.

    Attributes:
        vertices: [V, 3] float64, cm, head space.
        faces: [F, 3] int32, counter-clockwise seen from outside.
        uv: [U, 2] float64 and uv_faces [F, 3] int32.
        face_material: [F] int16, 0 skin, 1 mouth interior.
        lip_side: [V] int8: UPPER_LIP / LOWER_LIP for the split mouth row and pouch halves,
            MOUTH_CORNER for the two corners and the pouch's side seams, 0 elsewhere.
        upper_lip, lower_lip: [n] vertex indices of the two copies of the mouth row, -x to +x.
        corners: [2] vertex indices of the right (-x) and left (+x) mouth corner.
        mouth: [V] bool, the pouch vertices.
        grid: [rows, columns] vertex index of each grid sample (upper copies on the mouth row).
        grid_uv: [rows, columns + 1] UV index of each grid sample (the last column repeats the first).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    uv_faces: np.ndarray
    face_material: np.ndarray
    lip_side: np.ndarray
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    corners: np.ndarray
    mouth: np.ndarray
    grid: np.ndarray
    grid_uv: np.ndarray


def _warp(s: np.ndarray, lo: float, hi: float, centre: float, width: float, boost: float) -> np.ndarray:
    """Map uniform s in [0, 1] to [lo, hi] with sample density 1 + boost * gauss(centre, width)."""
    x = np.linspace(lo, hi, 4097)
    density = 1.0 + boost * np.exp(-(((x - centre) / width) ** 2))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    return np.interp(s, cdf / cdf[-1], x)


def grid_angles(rows: int, columns: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Polar angles [rows], azimuths [columns] (symmetric about 0, column columns//2 at 0) and the mouth row."""
    theta = _warp(np.linspace(0.0, 1.0, rows), THETA_TOP, THETA_NECK, _FACE_THETA, _FACE_THETA_WIDTH,
                  _FACE_THETA_BOOST)
    mouth_row = int(np.argmin(np.abs(theta - mouth_polar_angle())))
    theta[mouth_row] = mouth_polar_angle()
    phi = _warp(np.linspace(0.0, 1.0, columns + 1), -np.pi, np.pi, 0.0, _FACE_PHI_WIDTH, _FACE_PHI_BOOST)
    phi = 0.5 * (phi - phi[::-1])[:columns]  # exact mirror symmetry phi_j = -phi_(columns - j)
    return theta, phi, mouth_row


def cast_rays(directions: np.ndarray) -> np.ndarray:
    """[N, 3] surface points hit by rays from HEAD_CENTRE along unit ``directions`` [N, 3].

    Bisection on the SDF's sign, then one false-position step between the last bracket's ends.
    """
    lo = np.full(len(directions), _RAY_NEAR)
    hi = np.full(len(directions), _RAY_FAR)
    f_lo = head_sdf(HEAD_CENTRE + lo[:, None] * directions)
    f_hi = head_sdf(HEAD_CENTRE + hi[:, None] * directions)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        f = head_sdf(HEAD_CENTRE + mid[:, None] * directions)
        inside = f < 0.0
        lo, f_lo = np.where(inside, mid, lo), np.where(inside, f, f_lo)
        hi, f_hi = np.where(inside, hi, mid), np.where(inside, f_hi, f)
    rho = lo + (hi - lo) * f_lo / (f_lo - f_hi)
    return HEAD_CENTRE + rho[:, None] * directions


def _directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    return np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], axis=-1).reshape(-1, 3)


def _grid_faces(grid: np.ndarray, grid_uv: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles per grid cell, diagonals mirrored across phi = 0, CCW seen from outside."""
    rows, columns = grid.shape
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(columns), indexing="ij")
    i, j = i.ravel(), j.ravel()
    jn = (j + 1) % columns
    quads = [np.stack([g[i, j], g[i, jn2], g[i + 1, jn2], g[i + 1, j]], axis=1)
             for g, jn2 in ((grid, jn), (grid_uv, j + 1))]
    # a top-left, b top-right, c bottom-right, d bottom-left (seen from outside)
    right = (phi[j] + 0.5 * np.diff(np.append(phi, np.pi))[j]) > 0.0
    tris = []
    for q in quads:
        a, b, c, d = q.T
        t1 = np.where(right[:, None], np.stack([a, d, c], 1), np.stack([a, d, b], 1))
        t2 = np.where(right[:, None], np.stack([a, c, b], 1), np.stack([b, d, c], 1))
        tris.append(np.concatenate([t1, t2]))
    return tris[0], tris[1]


def build_head_mesh(rows: int, columns: int) -> HeadMesh:
    """The neutral demo head for a grid of ``rows`` x ``columns`` rays (columns even)."""
    theta, phi, mouth_row = grid_angles(rows, columns)
    points = cast_rays(_directions(theta, phi))
    grid = np.arange(rows * columns).reshape(rows, columns)
    grid_uv = np.arange(rows * (columns + 1)).reshape(rows, columns + 1)
    s = np.linspace(0.0, 1.0, rows)
    uu, vv = np.meshgrid(np.arange(columns + 1) / columns, 1.0 - s * (1.0 - MOUTH_UV_STRIP), indexing="xy")
    uv = [np.stack([uu.ravel(), vv.ravel()], 1)]
    faces, uv_faces = _grid_faces(grid, grid_uv, phi)

    # crown pole: one vertex, one UV per column (u at the cell centre, v = 1)
    pole = len(points)
    points = np.vstack([points, cast_rays(np.array([[0.0, 1.0, 0.0]]))])
    j = np.arange(columns)
    faces = np.vstack([faces, np.stack([np.full(columns, pole), grid[0, j], grid[0, (j + 1) % columns]], 1)])
    pole_uv = len(uv[0]) + j
    uv.append(np.stack([(j + 0.5) / columns, np.ones(columns)], 1))
    uv_faces = np.vstack([uv_faces, np.stack([pole_uv, grid_uv[0, j], grid_uv[0, j + 1]], 1)])

    # mouth slit: duplicate the mouth row between the corners; cells below it use the lower copies
    x_row = points[grid[mouth_row], 0]
    front = np.abs(phi) < np.pi / 2
    slit = np.flatnonzero(front & (np.abs(x_row) < MOUTH_HALF_WIDTH))
    upper = grid[mouth_row, slit]
    lower = len(points) + np.arange(len(slit))
    points = np.vstack([points, points[upper]])
    corners = grid[mouth_row, [slit[0] - 1, slit[-1] + 1]]
    below = np.zeros(len(faces), bool)
    below[: 2 * (rows - 1) * columns] = np.tile(np.repeat(np.arange(rows - 1), columns) == mouth_row, 2)
    remap = np.arange(len(points))
    remap[upper] = lower
    faces[below] = remap[faces[below]]

    lip_side = np.zeros(len(points), np.int8)
    lip_side[upper], lip_side[lower], lip_side[corners] = UPPER_LIP, LOWER_LIP, MOUTH_CORNER
    head_faces = len(faces)
    bag_points, bag_faces, bag_uv, bag_uv_faces, bag_side = _mouth_bag(points, upper, lower, corners,
                                                                       len(points), sum(len(u) for u in uv))
    if _has_directed_edge(faces, corners[0], upper[0]):  # the pouch must run against the lips along the loop
        bag_faces, bag_uv_faces = bag_faces[:, ::-1], bag_uv_faces[:, ::-1]
    points = np.vstack([points, bag_points])
    faces = np.vstack([faces, bag_faces])
    uv = np.vstack(uv + [bag_uv])
    uv_faces = np.vstack([uv_faces, bag_uv_faces])
    lip_side = np.concatenate([lip_side, bag_side])
    mouth = np.zeros(len(points), bool)
    mouth[len(points) - len(bag_points):] = True
    material = np.zeros(len(faces), np.int16)
    material[head_faces:] = 1
    return HeadMesh(vertices=points, faces=faces.astype(np.int32), uv=uv, uv_faces=uv_faces.astype(np.int32),
                    face_material=material, lip_side=lip_side, upper_lip=upper, lower_lip=lower,
                    corners=corners, mouth=mouth, grid=grid, grid_uv=grid_uv)


def _mouth_bag(points: np.ndarray, upper: np.ndarray, lower: np.ndarray, corners: np.ndarray,
               first_vertex: int, first_uv: int):
    """The mouth interior: rings behind the lip loop that open into a pouch, closed by a fan.

    The loop runs right corner, upper lip (-x to +x), left corner, lower lip (+x to -x); ring k
    sits k/_BAG_RINGS of the depth behind it, its halves parted by a sine profile across the mouth.
    Returns vertices [N, 3], faces [M, 3] (into the whole mesh), uv [N', 2], uv_faces, lip_side [N].
    """
    loop = np.concatenate([[corners[0]], upper, [corners[1]], lower[::-1]])
    n = len(upper)
    side = np.concatenate([[MOUTH_CORNER], np.full(n, UPPER_LIP), [MOUTH_CORNER], np.full(n, LOWER_LIP)])
    across = np.concatenate([[0.0], np.arange(1, n + 1) / (n + 1), [1.0], np.arange(n, 0, -1) / (n + 1)])
    lip = points[loop]
    k = np.arange(1, _BAG_RINGS + 1)[:, None, None] / _BAG_RINGS  # [R, 1, 1] depth share
    sign = np.where(side == UPPER_LIP, 1.0, np.where(side == LOWER_LIP, -1.0, 0.0))
    opening = _BAG_HEIGHT * np.sin(np.pi * k[..., 0]) ** 0.5 * np.sin(np.pi * across) ** 0.6 * sign
    centre_y = lip[:, 1].mean()
    rings = np.empty((_BAG_RINGS, len(loop), 3))
    rings[..., 0] = lip[:, 0] * (1.0 - 0.35 * k[..., 0])
    rings[..., 1] = lip[:, 1] + (centre_y - lip[:, 1]) * k[..., 0] + opening * (1.0 - 0.5 * k[..., 0] ** 2)
    rings[..., 2] = lip[:, 2] - _BAG_DEPTH * k[..., 0]
    back = np.array([[0.0, centre_y, lip[:, 2].max() - _BAG_DEPTH - 0.3]])
    verts = np.vstack([rings.reshape(-1, 3), back])
    L = len(loop)
    index = np.vstack([loop, first_vertex + np.arange(_BAG_RINGS * L).reshape(_BAG_RINGS, L)])
    back_index = first_vertex + _BAG_RINGS * L
    right = (lip[:, 0] + np.roll(lip[:, 0], -1)) > 0.0  # loop segment j runs from loop[j] to loop[j + 1]
    faces = _ring_faces(index, back_index, right)
    # UVs: a band at the texture bottom, u across the loop, v deeper towards 0
    uv_index = first_uv + np.arange((_BAG_RINGS + 1) * (L + 1)).reshape(_BAG_RINGS + 1, L + 1)
    uu, vv = np.meshgrid(np.arange(L + 1) / L, MOUTH_UV_STRIP * (1.0 - np.arange(_BAG_RINGS + 1) / (_BAG_RINGS + 1)))
    uv = np.vstack([np.stack([uu.ravel(), vv.ravel()], 1), [[0.5, 0.0]]])
    uv_faces = _ring_faces(uv_index, first_uv + uv.shape[0] - 1, right, seam=True)
    side_rings = np.tile(np.where(side == MOUTH_CORNER, MOUTH_CORNER, side), _BAG_RINGS)
    return verts, faces, uv, uv_faces, np.append(side_rings, MOUTH_CORNER).astype(np.int8)


def _ring_faces(index: np.ndarray, back: int, right: np.ndarray, seam: bool = False) -> np.ndarray:
    """Triangles between consecutive closed rings ``index`` [R+1, L(+1 when seam)] and a fan to ``back``.

    Every triangle runs the same way round (ring 0 edges go along the loop); the caller flips them
    all when that disagrees with the lips' triangles. ``right`` [L] picks each loop segment's quad
    diagonal (True on the +x side) so that the pouch is mirror-symmetric like the grid.
    """
    R1, Lc = index.shape
    L = Lc - 1 if seam else Lc
    r, j = np.meshgrid(np.arange(R1 - 1), np.arange(L), indexing="ij")
    r, j = r.ravel(), j.ravel()
    jn = j + 1 if seam else (j + 1) % L
    a, b, c, d = index[r, j], index[r, jn], index[r + 1, jn], index[r + 1, j]
    use_ac = right[j][:, None]
    t1 = np.where(use_ac, np.stack([a, b, c], 1), np.stack([a, b, d], 1))
    t2 = np.where(use_ac, np.stack([a, c, d], 1), np.stack([b, c, d], 1))
    jj = np.arange(L)
    fan = np.stack([index[-1, jj], index[-1, jj + 1 if seam else (jj + 1) % L], np.full(L, back)], 1)
    return np.concatenate([t1, t2, fan])


def _has_directed_edge(faces: np.ndarray, a: int, b: int) -> bool:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return bool(((e[:, 0] == a) & (e[:, 1] == b)).any())
