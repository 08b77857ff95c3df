"""Closest points on triangles, vectorised over many (point, triangle) pairs."""

import numpy as np

__all__ = ["closest_point_barycentrics"]


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ni,ni->n", x, y)


def closest_point_barycentrics(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentrics [n, 3] of the point of triangle (a, b, c) nearest to p, for [n, 3] arrays of each.

    Ericson, "Real-Time Collision Detection" (2005), §5.1.5: the Voronoi region of p (a vertex, an
    edge or the interior) decides the point. A degenerate triangle gives the nearest of its corners'
    regions that it can evaluate. The point is ``bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c``.
    """
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)

    v = ratio(vb, va + vb + vc)
    w = ratio(vc, va + vb + vc)
    bary = np.stack([1 - v - w, v, w], -1)                                       # interior
    # Regions in reverse order of Ericson's tests, so that the earlier tests win.
    e_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([0 * e_bc, 1 - e_bc, e_bc], -1)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - ratio(d2, d2 - d6), 0 * d2, ratio(d2, d2 - d6)], -1)),
        ((d6 >= 0) & (d5 <= d6), np.array([0.0, 0.0, 1.0])),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - ratio(d1, d1 - d3), ratio(d1, d1 - d3), 0 * d1], -1)),
        ((d3 >= 0) & (d4 <= d3), np.array([0.0, 1.0, 0.0])),
        ((d1 <= 0) & (d2 <= 0), np.array([1.0, 0.0, 0.0])),
    ]
    for inside, value in regions:
        bary = np.where(inside[:, None], value, bary)
    return bary
