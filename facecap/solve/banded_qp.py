"""Box-constrained quadratic programs with a pentadiagonal Hessian, solved exactly.

The per-coordinate subproblem of the coordinate-descent rig solver (Rackovic et al., "Refined
Inverse Rigging", SIGGRAPH Asia 2024) is, for one controller's weights over T frames,
``min_x 0.5 x^T H x + c^T x  s.t.  lo <= x <= hi`` with ``H = diag(a) + mu * D2^T D2``: a
diagonal data term plus the roughness penalty of second differences, a symmetric matrix of
half-bandwidth 2. It is solved by Bertsekas' projected Newton method for bound constraints
(Bertsekas 1982, "Projected Newton methods for optimization problems with simple constraints",
SIAM J. Control Optim. 20(2)): Newton steps on the free variables, solved with LAPACK's banded
Cholesky ``dpbsv`` in O(T), scaled gradient steps on the binding ones, an Armijo search along the
projection arc. Restricting a pentadiagonal matrix to a subset of its rows and columns keeps it
pentadiagonal in the compressed indices, so every Newton system stays banded.
"""

import numpy as np
from scipy.linalg.lapack import dpbsv

__all__ = ["Bands", "d2_gram_bands", "banded_matvec", "solve_box_qp_banded"]

Bands = tuple[np.ndarray, np.ndarray, np.ndarray]  # (diag [T], first [T-1], second [T-2] super-diagonal)

SECOND_DIFFERENCE = (1.0, -2.0, 1.0)
ARMIJO_SIGMA = 1e-4  # sufficient-decrease fraction (Bertsekas 1982, eq. 32)
MAX_BACKTRACKS = 40  # halvings of the step before giving up on a line search
BINDING_EPS = 1e-3  # Bertsekas' epsilon: how close to a bound a variable counts as binding
RIDGE = 1e-12  # relative diagonal shift when a free block is singular (no data, no roughness)


def d2_gram_bands(T: int) -> Bands:
    """Bands of ``D2^T D2`` for the [T-2, T] second-difference matrix (rows ``1, -2, 1``).

    Returns (m0 [T], m1 [T-1], m2 [T-2]): diagonal and the two super-diagonals; zeros when T < 3.
    """
    m0, m1, m2 = np.zeros(T), np.zeros(max(T - 1, 0)), np.zeros(max(T - 2, 0))
    rows = T - 2
    if rows <= 0:
        return m0, m1, m2
    c = SECOND_DIFFERENCE
    for j in range(3):
        m0[j:j + rows] += c[j] * c[j]
    for j in range(2):
        m1[j:j + rows] += c[j] * c[j + 1]
    m2[:rows] += c[0] * c[2]
    return m0, m1, m2


def banded_matvec(bands: Bands, x: np.ndarray) -> np.ndarray:
    """``H @ x`` for the symmetric pentadiagonal ``H`` given by its upper bands; x: [T]."""
    h0, h1, h2 = bands
    y = h0 * x
    if len(h1):
        y[:-1] += h1 * x[1:]
        y[1:] += h1 * x[:-1]
    if len(h2):
        y[:-2] += h2 * x[2:]
        y[2:] += h2 * x[:-2]
    return y


def _compressed_bands(bands: Bands, free: np.ndarray) -> np.ndarray:
    """LAPACK upper band storage [3, F] of ``H[free][:, free]`` (still half-bandwidth 2)."""
    h0, h1, h2 = bands
    F = len(free)
    ab = np.zeros((3, F))
    ab[2] = h0[free]
    if F > 1:
        gap = np.diff(free)
        prev = free[:-1]
        one = gap == 1
        two = gap == 2
        ab[1, 1:][one] = h1[prev[one]]
        ab[1, 1:][two] = h2[prev[two]]
    if F > 2:
        prev2 = free[:-2]
        adjacent = (free[2:] - prev2) == 2
        ab[0, 2:][adjacent] = h2[prev2[adjacent]]
    return ab


def _newton_free(bands: Bands, free: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    ab = _compressed_bands(bands, free)
    _, x, info = dpbsv(ab, rhs, lower=0)
    if info > 0:  # singular free block: shift the diagonal slightly and retry
        ab = _compressed_bands(bands, free)
        ab[2] += RIDGE * max(float(np.abs(ab[2]).max()), 1.0)
        _, x, info = dpbsv(ab, rhs, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"banded Cholesky failed (LAPACK dpbsv info={info})")
    return x


def solve_box_qp_banded(bands: Bands, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, x0: np.ndarray,
                        tol: float = 1e-10, max_iter: int = 50) -> tuple[np.ndarray, int]:
    """Minimise ``0.5 x^T H x + c^T x`` over ``lo <= x <= hi`` (H symmetric positive semi-definite, banded).

    Args:
        bands: (h0 [T], h1 [T-1], h2 [T-2]) upper bands of H.
        c: [T] linear term; lo, hi: [T] bounds (``lo == hi`` fixes a variable); x0: [T] start.
        tol: stop when the scaled projected gradient ``max |x - P(x - g / diag(H))|`` is below it
            (x's units), i.e. when the KKT conditions hold to ``tol``.
        max_iter: Newton iterations at most.
    Returns:
        x [T] the minimiser, and the number of Newton iterations taken.
    """
    h0 = bands[0]
    scale = np.where(h0 > 0, h0, 1.0)
    fixed = lo >= hi
    x = np.clip(x0, lo, hi)
    g = banded_matvec(bands, x) + c
    q = 0.5 * x @ (g + c)
    for it in range(max_iter):
        step = x - np.clip(x - g / scale, lo, hi)
        residual = float(np.abs(step).max()) if len(x) else 0.0
        if residual <= tol:
            return x, it
        eps = min(BINDING_EPS, residual)
        binding = fixed | ((x <= lo + eps) & (g > 0)) | ((x >= hi - eps) & (g < 0))
        d = -g / scale
        d[fixed] = 0.0
        free = np.flatnonzero(~binding)
        if len(free):
            d[free] = _newton_free(bands, free, -g[free])
        alpha = 1.0
        for _ in range(MAX_BACKTRACKS):
            x_new = np.clip(x + alpha * d, lo, hi)
            dx = x_new - x
            g_new = banded_matvec(bands, x_new) + c
            q_new = 0.5 * x_new @ (g_new + c)
            # Armijo along the projection arc: predicted decrease from the first-order model.
            if q - q_new >= -ARMIJO_SIGMA * (g @ dx) or not np.any(dx):
                break
            alpha *= 0.5
        else:
            return x, it + 1
        if not np.any(dx):
            return x, it + 1
        x, g, q = x_new, g_new, q_new
    return x, max_iter
