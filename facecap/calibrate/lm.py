"""Robust Levenberg-Marquardt for bundle adjustment: sparse Jacobian, dense normal equations.

Why not scipy.optimize.least_squares: its "trf" solver with a sparse Jacobian (LSMR steps) needs
thousands of iterations on calibration problems (focal length, distortion and poses are strongly
correlated), and its dense "exact" solver takes an SVD of the whole Jacobian every iteration.
Here each iteration solves the P x P normal equations (Marquardt 1963, with the diagonal scaling
of Triggs et al. 2000, "Bundle adjustment: a modern synthesis", sec. 4.2) by Cholesky; robust
losses act through iteratively reweighted least squares on each point's 2D error (ibid., sec. 3.3),
with scipy's loss names and definitions (rho(z), z = (e / scale)^2).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.sparse import csr_matrix, diags

__all__ = ["LMResult", "robust_rho", "levenberg_marquardt"]

log = logging.getLogger(__name__)

LAMBDA_START = 1e-3
LAMBDA_UP, LAMBDA_DOWN = 10.0, 3.0
LAMBDA_MAX = 1e10
DIAG_FLOOR = 1e-12  # keeps the Marquardt scaling positive for parameters nothing depends on


@dataclass(frozen=True)
class LMResult:
    """x: [P] solution; residuals: [2M] at x; cost: robust cost; iterations: accepted steps."""

    x: np.ndarray
    residuals: np.ndarray
    cost: float
    iterations: int


def robust_rho(z: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """(rho(z), rho'(z)) of scipy's losses for z = squared scaled error >= 0."""
    if loss == "linear":
        return z, np.ones_like(z)
    if loss == "huber":
        big = z > 1
        root = np.sqrt(np.where(big, z, 1.0))
        return np.where(big, 2 * root - 1, z), np.where(big, 1 / root, 1.0)
    if loss == "soft_l1":
        root = np.sqrt(1 + z)
        return 2 * (root - 1), 1 / root
    if loss == "cauchy":
        return np.log1p(z), 1 / (1 + z)
    raise ValueError(f"unknown loss {loss!r}")


def levenberg_marquardt(fun: Callable[[np.ndarray], np.ndarray], jac: Callable[[np.ndarray], csr_matrix],
                        x0: np.ndarray, loss: str = "huber", scale: float = 1.0, max_iter: int = 100,
                        rtol: float = 1e-10) -> LMResult:
    """Minimise sum_m scale^2 rho(|r_m|^2 / scale^2) over points m, residual pairs r_m = fun(x)[2m:2m+2].

    fun: [P] -> [2M] residuals; jac: [P] -> [2M, P] sparse Jacobian. Stops when the relative cost
    decrease or step falls under ``rtol``, or after ``max_iter`` accepted steps.
    """
    def cost_of(r: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.sum(r.reshape(-1, 2) ** 2, axis=1) / scale ** 2
        rho, weight = robust_rho(z, loss)
        return float(scale ** 2 * rho.sum()), np.repeat(weight, 2)

    x, r = x0.astype(np.float64).copy(), fun(x0)
    cost, w = cost_of(r)
    lam, iterations = LAMBDA_START, 0
    while iterations < max_iter:
        J = jac(x)
        JtW = (diags(w) @ J).T.tocsr()
        A = (JtW @ J).toarray()
        g = JtW @ r
        d = np.maximum(np.diag(A), DIAG_FLOOR)
        improved = False
        while lam < LAMBDA_MAX:
            try:
                step = -cho_solve(cho_factor(A + lam * np.diag(d)), g)
            except LinAlgError:
                lam *= LAMBDA_UP
                continue
            r_new = fun(x + step)
            cost_new, w_new = cost_of(r_new)
            if np.isfinite(cost_new) and cost_new < cost:
                improved = True
                break
            lam *= LAMBDA_UP
        if not improved:
            break
        small = (cost - cost_new) <= rtol * cost or np.linalg.norm(step) <= rtol * (np.linalg.norm(x) + rtol)
        x, r, cost, w = x + step, r_new, cost_new, w_new
        lam = max(lam / LAMBDA_DOWN, 1e-12)
        iterations += 1
        if small:
            break
    log.debug("Levenberg-Marquardt: %d steps, cost %.6g", iterations, cost)
    return LMResult(x, r, cost, iterations)
