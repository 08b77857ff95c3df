"""The demo head's procedural albedo: skin, hair, brows, eyes, lips and mouth interior, with pore noise.

Painted in UV space: since the UVs are the ray-grid parameters, the head-space position of every
texel is a bilinear interpolation of the grid's vertex positions, and each feature is painted from
the same design curves the geometry and landmarks use (:mod:`facecap.rig.demo.sdf`). The noise
(low-frequency tone and fine pores, so photometric fitting has gradients everywhere) comes from a
seeded numpy Generator, so the texture is deterministic.
"""

import numpy as np
from scipy import ndimage

from facecap.rig.demo.sdf import EYE_CENTRE, MOUTH_HALF_WIDTH, lid_curve, lip_outline
from facecap.rig.demo.surface import MOUTH_UV_STRIP, HeadMesh

__all__ = ["paint_texture"]

SKIN = np.array([0.80, 0.60, 0.50])
CHEEK_FLUSH = np.array([0.05, -0.03, -0.02])
HAIR = np.array([0.20, 0.13, 0.09])
BROW = np.array([0.27, 0.18, 0.13])
SCLERA = np.array([0.92, 0.89, 0.85])
IRIS = np.array([0.36, 0.26, 0.17])
PUPIL = np.array([0.03, 0.02, 0.02])
LIP = np.array([0.72, 0.40, 0.40])
NOSTRIL = np.array([0.30, 0.15, 0.12])
MOUTH_INSIDE, MOUTH_DEEP = np.array([0.50, 0.16, 0.17]), np.array([0.18, 0.05, 0.06])
_IRIS_RADIUS, _PUPIL_RADIUS = 0.55, 0.22  # cm
_HAIRLINE_FRONT, _HAIRLINE_DROP = 9.0, 11.0  # cm; hairline height at the forehead, drop to the nape
_BROW_X = np.array([1.2, 1.5, 2.6, 3.6, 4.5, 5.4])  # cm; brow centre line (left brow; mirror for right)
_BROW_Y = np.array([5.45, 5.5, 5.75, 5.75, 5.5, 5.0])
_BROW_HALF_HEIGHT = 0.28  # cm


def _soft(signed: np.ndarray, edge: float) -> np.ndarray:
    """Coverage of a region from a signed distance-like value (positive inside) with a soft edge (cm)."""
    return np.clip(0.5 + signed / edge, 0.0, 1.0)


def _texel_positions(mesh: HeadMesh, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Head-space position [size, size, 3] of each texel centre, and the [size] v of each texel row."""
    rows, columns = mesh.grid.shape
    grid = mesh.vertices[np.concatenate([mesh.grid, mesh.grid[:, :1]], axis=1)]  # [rows, columns + 1, 3]
    centres = (np.arange(size) + 0.5) / size
    v = 1.0 - centres
    row = np.clip((1.0 - v) / (1.0 - MOUTH_UV_STRIP), 0.0, 1.0) * (rows - 1)
    col = centres * columns
    rr, cc = np.meshgrid(row, col, indexing="ij")
    pos = np.stack([ndimage.map_coordinates(grid[..., k], [rr, cc], order=1, mode="nearest") for k in range(3)], -1)
    return pos, v


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """[size, size] smooth unit-variance-ish noise with about ``cells`` features across."""
    return ndimage.zoom(rng.standard_normal((cells, cells)), size / cells, order=3, mode="grid-wrap",
                        grid_mode=True)[:size, :size]


def paint_texture(mesh: HeadMesh, size: int, seed: int) -> np.ndarray:
    """[1, size, size, 3] uint8 albedo for ``mesh``'s UVs (row 0 is v = 1)."""
    rng = np.random.default_rng(seed)
    p, v = _texel_positions(mesh, size)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    ax = np.abs(x)
    tone = 0.035 * _noise(rng, size, 8) + 0.02 * _noise(rng, size, 48)
    pores = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.6) * 0.06
    colour = SKIN * (1.0 + tone + pores)[..., None]
    flush = np.exp(-0.5 * (((ax - 3.8) / 1.5) ** 2 + ((y + 0.3) / 1.4) ** 2)) * (z > 5.0)
    colour += flush[..., None] * CHEEK_FLUSH

    azimuth = np.abs(np.arctan2(x, z)) / np.pi
    hair = _soft(y - (_HAIRLINE_FRONT - _HAIRLINE_DROP * azimuth ** 1.3), 0.6)
    strands = 1.0 + 0.25 * ndimage.gaussian_filter(rng.standard_normal((size, size)), (2.0, 0.4))
    colour = colour * (1.0 - hair[..., None]) + (HAIR * strands[..., None]) * hair[..., None]

    brow_y = np.interp(ax, _BROW_X, _BROW_Y)
    brow_span = _soft(np.minimum(ax - _BROW_X[0], _BROW_X[-1] - ax), 0.4)
    brow = _soft(_BROW_HALF_HEIGHT * (0.6 + 0.4 * brow_span) - np.abs(y - brow_y), 0.12) * brow_span * (z > 6.0)
    colour = colour * (1.0 - brow[..., None]) + (BROW * strands[..., None]) * brow[..., None]

    up, low = lid_curve(ax, upper=True), lid_curve(ax, upper=False)
    front = z > 7.0
    eye = _soft(np.minimum(up - y, y - low), 0.05) * front
    r = np.hypot(ax - EYE_CENTRE[0], y - EYE_CENTRE[1])
    eye_colour = np.where((r < _PUPIL_RADIUS)[..., None], PUPIL, np.where((r < _IRIS_RADIUS)[..., None], IRIS, SCLERA))
    colour = colour * (1.0 - eye[..., None]) + eye_colour * eye[..., None]
    lash = np.exp(-(((y - up - 0.03) / 0.06) ** 2)) * (up > low + 0.05) * front
    colour *= (1.0 - 0.7 * lash)[..., None]

    lips = _soft(np.minimum(lip_outline(x, upper=True) - y, y - lip_outline(x, upper=False)), 0.12)
    lips *= _soft(MOUTH_HALF_WIDTH + 0.1 - ax, 0.3) * (z > 8.0)
    colour = colour * (1.0 - lips[..., None]) + (LIP * (1.0 + pores)[..., None]) * lips[..., None]
    nostril = _soft(0.22 - np.hypot((ax - 0.55) / 1.3, y + 0.85), 0.08) * (z > 9.0)
    colour = colour * (1.0 - nostril[..., None]) + NOSTRIL * nostril[..., None]

    inside = (v < MOUTH_UV_STRIP)[:, None, None]
    depth = np.clip(1.0 - v / MOUTH_UV_STRIP, 0.0, 1.0)[:, None, None]
    colour = np.where(inside, MOUTH_INSIDE * (1.0 - depth) + MOUTH_DEEP * depth, colour)
    return (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)[None]
