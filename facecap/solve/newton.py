"""A projected Newton step on all free weights at once, for rigs without correctives (a convex QP).

Coordinate descent converges slowly when shapes are strongly correlated (the ICT rig's Gram matrix
has condition number ~7e4): each sweep only moves along one shape at a time. Between sweeps, this
step solves the problem's Newton system on the free variables jointly (Bertsekas 1982, projected
Newton; the sweeps identify the active bounds). For linear rigs the scaled objective
``f(W) = sum_t (0.5 w_t^T G w_t - b_t^T w_t) + l1 sum W + 0.5 mu sum_k ||D2 w_k||^2`` has the
Hessian ``I_T (x) G + mu D2^T D2 (x) I_K``; ordered time-major it is banded with half-bandwidth at
most ``2 K``, and restricted to the free variables its bandwidth is about the free weights of three
frames, so LAPACK's banded Cholesky ``dpbsv`` solves it in O(T K_free^3).
"""

import numpy as np
from scipy.linalg.lapack import dpbsv

from facecap.solve.banded_qp import ARMIJO_SIGMA, BINDING_EPS, MAX_BACKTRACKS, Bands

__all__ = ["time_matvec", "newton_face_step"]


def time_matvec(bands: Bands, W: np.ndarray) -> np.ndarray:
    """``M @ W`` along time for a symmetric pentadiagonal M (upper bands m0 [T], m1 [T-1], m2 [T-2]); W: [T, K]."""
    m0, m1, m2 = bands
    out = m0[:, None] * W
    if len(m1):
        out[:-1] += m1[:, None] * W[1:]
        out[1:] += m1[:, None] * W[:-1]
    if len(m2):
        out[:-2] += m2[:, None] * W[2:]
        out[2:] += m2[:, None] * W[:-2]
    return out


def _free_hessian_bands(G: np.ndarray, d2: Bands, mu: float, free_mask: np.ndarray) -> np.ndarray | None:
    """LAPACK upper band storage of the Hessian restricted to ``free_mask`` [T, K] (time-major order)."""
    T, K = free_mask.shape
    pos = np.full(T * K, -1, dtype=np.int64)
    flat = np.flatnonzero(free_mask.ravel())
    F = len(flat)
    pos[flat] = np.arange(F)
    t_of, k_of = np.divmod(flat, K)
    # Same-frame pairs i <= j: the free weights of one frame are contiguous in the compressed order.
    frame_end = np.cumsum(np.bincount(t_of, minlength=T))
    counts = frame_end[t_of] - np.arange(F)
    rows = np.repeat(np.arange(F), counts)
    cols = rows + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    vals = G[k_of[rows], k_of[cols]]
    vals[rows == cols] += mu * d2[0][t_of]
    P = pos.reshape(T, K)
    pairs_r, pairs_c, pairs_v = [rows], [cols], [vals]
    for lag, band in ((1, d2[1]), (2, d2[2])):
        if T <= lag:
            continue
        both = (P[:-lag] >= 0) & (P[lag:] >= 0)
        pairs_r.append(P[:-lag][both])
        pairs_c.append(P[lag:][both])
        pairs_v.append(np.broadcast_to(mu * band[:, None], both.shape)[both])
    rows, cols, vals = (np.concatenate(x) for x in (pairs_r, pairs_c, pairs_v))
    width = int((cols - rows).max())
    ab = np.zeros((width + 1, F))
    ab[width + rows - cols, cols] = vals
    return ab


def newton_face_step(G: np.ndarray, b: np.ndarray, W: np.ndarray, lo: np.ndarray, hi: np.ndarray, mu: float,
                     l1: float, d2: Bands, f_value) -> tuple[np.ndarray, float] | None:
    """One projected Newton step on the free weights of a linear rig; None when it does not lower f.

    Args:
        G: [K, K] Gram matrix; b: [T, K] ``A^T y_t``; W, lo, hi: [T, K] weights and bounds.
        mu, l1: roughness and sparsity weights of the scaled objective (module docstring).
        d2: bands of ``D2^T D2`` for T frames; f_value: W -> f(W), the objective to decrease.
    Returns:
        (new weights [T, K], f of them), or None.
    """
    g = W @ G - b + l1 + mu * time_matvec(d2, W)
    eps = BINDING_EPS
    free = (lo < hi) & ~(((W <= lo + eps) & (g > 0)) | ((W >= hi - eps) & (g < 0)))
    if not free.any():
        return None
    ab = _free_hessian_bands(G, d2, mu, free)
    _, step, info = dpbsv(ab, -g[free])
    if info != 0:
        return None
    d = np.zeros_like(W)
    d[free] = step
    f0 = f_value(W)
    alpha = 1.0
    for _ in range(MAX_BACKTRACKS):
        W_new = np.clip(W + alpha * d, lo, hi)
        f_new = f_value(W_new)
        if f0 - f_new >= -ARMIJO_SIGMA * float((g * (W_new - W)).sum()) and f_new < f0:
            return W_new, f_new
        alpha *= 0.5
    return None
