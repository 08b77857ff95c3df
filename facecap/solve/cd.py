"""Coordinate-descent inverse rigging over a whole sequence (Rackovic et al., SIGGRAPH Asia 2024).

Minimises, for targets ``y_t`` (offsets from the neutral) and weights ``W`` [T, K] in [0, 1],

    J(W) = (1/n) sum_t ||rig(w_t) - y_t||^2 + (lambda1/K) sum_{t,k} w_{t,k}
           + lambda2 sum_k sum_t (w_{t,k} - 2 w_{t+1,k} + w_{t+2,k})^2

where ``rig(w) = deltas @ w + corrective_deltas @ c(w)`` with corrective activations that are products
of 2 to 4 weights (paper eq. 5 with the roughness penalty of its §4; n = 3 * vertices). Blendshapes
are temporally decoupled: one coordinate is a controller's whole weight curve over time, visited in
order of decreasing shape magnitude. Fixing the other controllers, each residual is affine in that
controller's weight, so the coordinate's subproblem is a box-constrained quadratic over the T frames
with a pentadiagonal Hessian, solved exactly by :func:`facecap.solve.banded_qp.solve_box_qp_banded`.

Everything happens in Gram space: with ``A = [deltas, corrective_deltas]`` and activations
``a_t = [w_t, c(w_t)]``, the fidelity is ``a_t^T (A^T A) a_t - 2 a_t^T A^T y_t + ||y_t||^2``, so after
forming ``A^T A`` and ``A^T y_t`` once a sweep costs O(T (K + C) s) for s columns touched per
controller, independent of n. The gradient ``A^T A a_t - A^T y_t`` is updated with a low-rank change
after each coordinate and refreshed at every sweep.

Threads: the solver's BLAS calls run on one thread (``SOLVER_BLAS_THREADS``, set with threadpoolctl
for the duration of each solve, whatever the process's setting). Its calls are small (the Gram
matrix once, then rank-one updates of [T, K + C] arrays per coordinate), so OpenBLAS's threads cost
more to start and synchronise than they save, and where the cores are busy they spin against the
other work (docs/decisions.md, "The CD solver's BLAS on one thread").
"""

import functools
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from threadpoolctl import ThreadpoolController

from facecap.checks import check_shape
from facecap.config import field
from facecap.errors import ConfigError, ShapeError
from facecap.solve.banded_qp import d2_gram_bands, solve_box_qp_banded
from facecap.solve.basis import DeltaBasis
from facecap.solve.newton import newton_face_step

__all__ = ["DeltaBasis", "CDConfig", "CDResult", "solve_cd", "cd_objective"]

log = logging.getLogger(__name__)

CARRIED_FRAMES = 2  # a second difference reaches two frames back: interval mode freezes that many
SOLVER_BLAS_THREADS = 1  # BLAS threads while solving (module docstring)


@dataclass
class CDConfig:
    """Settings of the coordinate-descent solver (defaults: the paper's lambda1 = lambda2 = 1)."""

    lambda_l1: float = field(1.0, "sparsity weight lambda1; J adds (lambda1 / K) * sum of weights")
    lambda_smooth: float = field(1.0, "roughness weight lambda2; J adds lambda2 * sum of squared second "
                                      "differences of each weight over time")
    max_sweeps: int = field(200, "at most this many passes over all controllers")
    tol: float = field(1e-7, "stop when a sweep lowers J by less than tol * J")
    interval: int = field(0, "0: solve the whole sequence at once; T > 0: solve T-frame intervals in order, "
                             "each seeing the last two solved frames of the one before (causal, as the paper's code)")
    order: Literal["magnitude", "index"] = field("magnitude", "visit controllers by decreasing squared norm "
                                                 "of their shape ('magnitude', the paper's order) or by index")
    newton: bool = field(True, "rigs without correctives: after each sweep, a projected Newton step on all free "
                               "weights jointly (kept only when it lowers J); fixes slow progress on correlated shapes")
    qp_tol: float = field(1e-10, "per-coordinate subproblem: stop when the scaled projected gradient (KKT "
                                 "residual, weight units) is below this")


@dataclass
class CDResult:
    """What :func:`solve_cd` returns.

    Attributes:
        weights: [T, K] float64 in [0, 1].
        objective: J(weights) of the whole sequence (module docstring).
        sweeps: sweeps run (summed over intervals in interval mode).
        history: J after each sweep, starting with J of the start point (whole-sequence mode);
            in interval mode J of the whole sequence after each interval.
    """

    weights: np.ndarray
    objective: float
    sweeps: int
    history: list[float]


def _check_config(config: CDConfig) -> None:
    if config.lambda_l1 < 0 or config.lambda_smooth < 0:
        raise ConfigError(f"lambda_l1 and lambda_smooth must be >= 0, got {config.lambda_l1}, {config.lambda_smooth}")
    if config.max_sweeps < 1:
        raise ConfigError(f"max_sweeps must be >= 1, got {config.max_sweeps}")
    if config.interval < 0 or 0 < config.interval < CARRIED_FRAMES + 1:
        raise ConfigError(f"interval must be 0 (whole sequence) or >= {CARRIED_FRAMES + 1} frames, "
                          f"got {config.interval}")
    if config.tol < 0 or config.qp_tol <= 0:
        raise ConfigError(f"tol must be >= 0 and qp_tol > 0, got {config.tol}, {config.qp_tol}")


def _roughness(W: np.ndarray) -> float:
    return float((np.diff(W, n=2, axis=0) ** 2).sum()) if len(W) > 2 else 0.0


def cd_objective(basis: DeltaBasis, W: np.ndarray, targets: np.ndarray, config: CDConfig) -> float:
    """J(W) evaluated directly on the n coordinates (independent of the solver's Gram bookkeeping).

    Args:
        basis: the rig; W: [T, K] weights; targets: [T, n] offsets from the neutral.
    """
    W = np.asarray(W, dtype=np.float64)
    check_shape(W, f"T {basis.num_shapes}", "weights")
    check_shape(targets, f"{W.shape[0]} {basis.num_coords}", "targets")
    residual = basis.evaluate(W) - targets
    return float((residual ** 2).sum() / basis.num_coords + config.lambda_l1 / basis.num_shapes * W.sum()
                 + config.lambda_smooth * _roughness(W))


class _Coordinates:
    """Per-controller index sets into the Gram matrix, prepared once per solve."""

    def __init__(self, basis: DeltaBasis) -> None:
        K = basis.num_shapes
        keys = basis.corrective_keys
        G = basis.gram
        self.cols: list[np.ndarray] = []  # [s] Gram columns that move with controller k (k, its correctives)
        self.others: list[np.ndarray] = []  # [s-1, 3] other driving shapes per corrective; K = the ones column
        self.gram_block: list[np.ndarray] = []  # [s, s]
        self.gram_rows: list[np.ndarray] = []  # [s, K + C]
        for k in range(K):
            rows = np.flatnonzero((keys == k).any(axis=1))
            others = np.full((len(rows), 3), K, dtype=np.int64)
            for i, r in enumerate(rows):
                rest = keys[r][(keys[r] >= 0) & (keys[r] != k)]
                others[i, :len(rest)] = rest
            cols = np.concatenate([[k], K + rows])
            self.cols.append(cols)
            self.others.append(others)
            self.gram_block.append(np.ascontiguousarray(G[np.ix_(cols, cols)]))
            self.gram_rows.append(np.ascontiguousarray(G[cols]))


def _sweeps(basis: DeltaBasis, coords: _Coordinates, b: np.ndarray, yy: float, W: np.ndarray, lo: np.ndarray,
            hi: np.ndarray, config: CDConfig, order: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Coordinate descent on one block of frames. b: [T, K+C] ``A^T y_t``; yy: sum ||y_t||^2; W, lo, hi: [T, K]."""
    T, K = W.shape
    n = basis.num_coords
    G = basis.gram
    mu = n * config.lambda_smooth  # the QP is J scaled by n / 2
    l1 = n * config.lambda_l1 / (2.0 * K)
    m0, m1, m2 = d2_gram_bands(T)
    h1, h2 = mu * m1, mu * m2
    W_ext = np.ones((T, K + 1))  # last column: ones, the "missing key" in corrective products
    W_ext[:, :K] = W
    free_k = [k for k in order if np.any(lo[:, k] < hi[:, k])]

    def objective(Wk: np.ndarray) -> tuple[float, np.ndarray]:
        act = basis.activations(Wk)
        grad = act @ G - b
        fid = float((act * (grad - b)).sum()) + yy
        return fid / n + config.lambda_l1 / K * float(Wk.sum()) + config.lambda_smooth * _roughness(Wk), grad

    newton = config.newton and basis.num_correctives == 0
    scaled = lambda Wk: 0.5 * n * objective(Wk)[0]  # noqa: E731  the Newton step's f = J * n / 2
    J, grad = objective(W_ext[:, :K])
    history = [J]
    for sweep in range(config.max_sweeps):
        for k in free_k:
            cols, others = coords.cols[k], coords.others[k]
            w = W_ext[:, k]
            if len(others):
                q = np.ones((T, len(cols)))
                q[:, 1:] = W_ext[:, others].prod(axis=-1)
                a = np.einsum("ts,sr,tr->t", q, coords.gram_block[k], q)
                lin = np.einsum("ts,ts->t", q, grad[:, cols]) - w * a
            else:
                a = np.full(T, G[k, k])
                lin = grad[:, k] - w * a
            x, _ = solve_box_qp_banded((a + mu * m0, h1, h2), lin + l1, lo[:, k], hi[:, k], w, config.qp_tol)
            dx = x - w
            if not np.any(dx):
                continue
            if len(others):
                grad += (dx[:, None] * q) @ coords.gram_rows[k]
            else:
                grad += np.outer(dx, coords.gram_rows[k][0])
            W_ext[:, k] = x
        if newton:
            step = newton_face_step(G, b, W_ext[:, :K], lo, hi, mu, l1, (m0, m1, m2), scaled)
            if step is not None:
                W_ext[:, :K] = step[0]
        J_new, grad = objective(W_ext[:, :K])  # refresh the gradient: no drift from the rank-s updates
        history.append(J_new)
        if history[-2] - J_new <= config.tol * abs(J_new):
            break
    return W_ext[:, :K].copy(), history


def _bounds(T: int, K: int, W0: np.ndarray, fixed_weights_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.zeros((T, K)), np.ones((T, K))
    if fixed_weights_mask is not None:
        mask = np.asarray(fixed_weights_mask, dtype=bool)
        if mask.shape not in ((K,), (T, K)):
            raise ShapeError(f"fixed_weights_mask must have shape [{K}] or [{T}, {K}], got {list(mask.shape)}")
        mask = np.broadcast_to(mask, (T, K))
        lo = np.where(mask, W0, lo)
        hi = np.where(mask, W0, hi)
    return lo, hi


def solve_cd(basis: DeltaBasis, targets: np.ndarray, config: CDConfig, warm_start: np.ndarray | None = None,
             fixed_weights_mask: np.ndarray | None = None) -> CDResult:
    """Solve the sequence's weights by coordinate descent on J (module docstring).

    Args:
        basis: the rig as a :class:`DeltaBasis` (possibly on a vertex subset, e.g. landmarks).
        targets: [T, n] target offsets from the neutral (target mesh minus neutral), flattened as the
            basis, in the rig's units.
        config: solver settings.
        warm_start: [T, K] start weights (clipped to [0, 1]); None starts from zeros (whole sequence)
            or from the previous interval's last frame (interval mode).
        fixed_weights_mask: [K] or [T, K] bool; True holds that weight at its warm-start value (0 without one).
    Returns:
        :class:`CDResult` with weights [T, K] in [0, 1] and J.
    """
    with _blas_controller().limit(limits=SOLVER_BLAS_THREADS, user_api="blas"):
        return _solve_cd(basis, targets, config, warm_start, fixed_weights_mask)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The process's thread pools, found once (numpy's and scipy's BLAS are loaded by this module's imports)."""
    return ThreadpoolController()


def _solve_cd(basis: DeltaBasis, targets: np.ndarray, config: CDConfig, warm_start: np.ndarray | None,
              fixed_weights_mask: np.ndarray | None) -> CDResult:
    _check_config(config)
    targets = np.asarray(targets, dtype=np.float64)
    T = check_shape(targets, f"T {basis.num_coords}", "targets")["T"]
    K = basis.num_shapes
    if T == 0:
        raise ShapeError("targets has no frames")
    if not np.isfinite(targets).all():
        raise ShapeError(f"targets has {int((~np.isfinite(targets)).sum())} non-finite entries")
    given = warm_start is not None
    if given:
        warm_start = np.asarray(warm_start, dtype=np.float64)
        check_shape(warm_start, f"{T} {K}", "warm_start")
        if not np.isfinite(warm_start).all():
            raise ShapeError("warm_start has non-finite entries")
    W = np.clip(warm_start, 0.0, 1.0) if given else np.zeros((T, K))
    lo, hi = _bounds(T, K, W, fixed_weights_mask)
    W = np.clip(W, lo, hi)
    order = np.argsort(-basis.magnitudes, kind="stable") if config.order == "magnitude" else np.arange(K)
    coords = _Coordinates(basis)
    b = targets @ basis.columns  # [T, K + C] A^T y_t: the only pass over the n coordinates
    yy = np.einsum("tn,tn->t", targets, targets)
    if config.interval == 0 or config.interval >= T:
        W, history = _sweeps(basis, coords, b, float(yy.sum()), W, lo, hi, config, order)
        return CDResult(weights=W, objective=history[-1], sweeps=len(history) - 1, history=history)
    sweeps, history = 0, []
    for start in range(0, T, config.interval):
        stop = min(start + config.interval, T)
        first = max(start - CARRIED_FRAMES, 0)
        if start and not given:
            W[start:stop] = np.clip(W[start - 1], lo[start:stop], hi[start:stop])
        block_lo, block_hi = lo[first:stop].copy(), hi[first:stop].copy()
        block_lo[:start - first] = block_hi[:start - first] = W[first:start]  # carried frames stay put
        W[first:stop], block_history = _sweeps(basis, coords, b[first:stop], float(yy[first:stop].sum()),
                                               W[first:stop], block_lo, block_hi, config, order)
        sweeps += len(block_history) - 1
        history.append(cd_objective_from_gram(basis, W, b, yy, config))
        log.debug("interval %d-%d: %d sweeps", start, stop, len(block_history) - 1)
    return CDResult(weights=W, objective=history[-1], sweeps=sweeps, history=history)


def cd_objective_from_gram(basis: DeltaBasis, W: np.ndarray, b: np.ndarray, yy: np.ndarray,
                           config: CDConfig) -> float:
    """J(W) from ``b = targets @ basis.columns`` [T, K+C] and ``yy`` [T] squared target norms (no n-sized work)."""
    act = basis.activations(W)
    fid = float(np.einsum("tp,pq,tq->", act, basis.gram, act) - 2.0 * (act * b).sum() + yy.sum())
    return fid / basis.num_coords + config.lambda_l1 / basis.num_shapes * float(W.sum()) \
        + config.lambda_smooth * _roughness(W)
