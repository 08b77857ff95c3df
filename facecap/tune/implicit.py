"""Implicit differentiation of a black-box tracker (Omens et al. 2025, section 6).

From v̂(θ) = R(T(v; θ); θ) (eq. 18), the tracker's derivative obeys (eq. 25)

    ∂R/∂c · ∂T/∂θ = -∂R/∂θ + ∂v̂/∂θ,

solved column by column with least squares, the pseudo-inverse, or Levenberg-Marquardt regularised
normal equations (section 7, after eq. 33). Objectives only need ``g^T ∂T/∂θ``; with the adjoint
``λ = (∂R/∂c)^{+T} g`` that is ``λ^T (-∂R/∂θ + ∂v̂/∂θ)``, one small solve per expression instead of
one per parameter. ∂v̂/∂θ is estimated by the Broyden-style finite-difference update of eq. 23,
kept as a low-rank matrix shared across expressions and warm-started from the previous step.
"""

from typing import Literal

import numpy as np

from facecap.checks import check_shape
from facecap.errors import ConfigError

__all__ = ["ImplicitMethod", "adjoint", "tracker_jacobian", "rig_theta_jacobian", "BroydenJacobian"]

ImplicitMethod = Literal["lstsq", "pinv", "lm"]

_PINV_RCOND = 1e-10  # singular values below this (relative) count as zero for the pseudo-inverse


def _normal_matrix(M: np.ndarray, method: ImplicitMethod, damping: float) -> np.ndarray:
    """M^T M (plus LM damping), the matrix of the normal equations."""
    if method not in ("lstsq", "pinv", "lm"):
        raise ConfigError(f"implicit method must be 'lstsq', 'pinv' or 'lm', got {method!r}")
    normal = M.T @ M
    return normal + damping * np.eye(M.shape[1]) if method == "lm" else normal


def _left_inverse(M: np.ndarray, method: ImplicitMethod, damping: float) -> np.ndarray:
    """[F, n] left inverse of ∂R/∂c restricted to the free controls (small problems and tests)."""
    normal = _normal_matrix(M, method, damping)
    if method == "pinv":
        return np.linalg.pinv(M, rcond=_PINV_RCOND)
    return np.linalg.lstsq(normal, M.T, rcond=None)[0]


def adjoint(M: np.ndarray, g: np.ndarray, method: ImplicitMethod = "lm", damping: float = 0.0) -> np.ndarray:
    """λ [n] with λ^T (∂R/∂c) X = g^T X for the eq. 25 solution X: λ = (M^+)^T g = M (M^T M)^{-1} g.

    Args:
        M: [n, F] ∂R/∂c on the tracker's free controls (those not held by a bound).
        g: [F] ∂L/∂T on those controls.
    """
    check_shape(g, f"{M.shape[1]}", "g")
    normal = _normal_matrix(M, method, damping)
    if method == "pinv":
        return M @ (np.linalg.pinv(normal, rcond=_PINV_RCOND, hermitian=True) @ g)
    return M @ np.linalg.lstsq(normal, g, rcond=None)[0]


def tracker_jacobian(M: np.ndarray, rhs: np.ndarray, method: ImplicitMethod = "lm",
                     damping: float = 0.0) -> np.ndarray:
    """∂T/∂θ [F, P] solving eq. 25 column by column: M X = rhs with rhs = -∂R/∂θ + ∂v̂/∂θ [n, P]."""
    check_shape(rhs, f"{M.shape[0]} P", "rhs")
    return _left_inverse(M, method, damping) @ rhs


def rig_theta_jacobian(controls: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """∂R/∂θ [n, P] for θ = D[mask] (eq. 29 generalised): entry (j, i) of D moves coordinate j by c_i.

    Dense; meant for small problems and tests (the adjoint form never builds it).
    """
    rows, cols = np.nonzero(mask)
    out = np.zeros((mask.shape[0], len(rows)))
    out[rows, np.arange(len(rows))] = np.asarray(controls)[cols]
    return out


class BroydenJacobian:
    """Low-rank estimates J_k ≈ ∂v̂_k/∂θ for N expressions, J_k = A_k U^T (eq. 23).

    The directions U [P, r] are shared; each expression keeps its own A_k [n, r]. Starting from
    zero (section 6: "an initial guess of zero can be used"), each finite difference along a unit
    direction u applies eq. 23, J_k += (fd_k - J_k u) u^T, so that afterwards J_k u = fd_k (eq. 24).
    Estimates persist between optimisation steps (the warm start); past ``max_rank`` the stacked
    factors are compressed by a truncated SVD.
    """

    def __init__(self, num_expressions: int, num_coords: int, num_params: int, max_rank: int = 8) -> None:
        if max_rank < 1:
            raise ConfigError(f"max_rank must be at least 1, got {max_rank}")
        self.A = np.zeros((num_expressions, num_coords, 0))
        self.U = np.zeros((num_params, 0))
        self.max_rank = max_rank

    def apply(self, u: np.ndarray) -> np.ndarray:
        """[N, n] J_k u for a direction u [P]."""
        return self.A @ (self.U.T @ u)

    def apply_transpose(self, lam: np.ndarray) -> np.ndarray:
        """[N, P] J_k^T λ_k for adjoints λ [N, n]."""
        return np.einsum("knr,kn->kr", self.A, lam) @ self.U.T

    def update(self, u: np.ndarray, fd: np.ndarray) -> None:
        """Eq. 23 along direction ``u`` [P] (normalised here) with ``fd`` [N, n] = (v̂(θ + s û) - v̂(θ)) / s."""
        norm = np.linalg.norm(u)
        if not norm > 0:
            raise ConfigError("Broyden direction must be non-zero")
        u = u / norm
        correction = fd - self.apply(u)
        self.A = np.concatenate([self.A, correction[:, :, None]], axis=2)
        self.U = np.concatenate([self.U, u[:, None]], axis=1)
        if self.U.shape[1] > self.max_rank:
            self._compress()

    def _compress(self) -> None:
        Q, R = np.linalg.qr(self.U)                               # U = Q R, Q [P, m]
        AR = self.A @ R.T                                         # J_k = (A_k R^T) Q^T
        stacked = AR.reshape(-1, AR.shape[2])
        _, _, Zt = np.linalg.svd(stacked, full_matrices=False)
        Z = Zt[: self.max_rank].T                                 # shared leading right subspace
        self.A = AR @ Z
        self.U = Q @ Z

    def dense(self, k: int) -> np.ndarray:
        """[n, P] the estimate for expression k (for tests and small problems)."""
        return self.A[k] @ self.U.T
