"""Minimise eq. 16/55 over θ_T with implicit tracker derivatives (Omens et al. 2025, sections 6-7, 10).

Each evaluation runs the tracker once on every expression (the objective is exact); gradients
use the adjoint form of eq. 25 with ∂v̂/∂θ taken as zero, estimated by eq. 23 (Broyden-style
finite differences along steepest-descent or random directions, warm-started across steps), or
computed exactly by autograd when the tracker is the differentiable least-squares one. The
step is L-BFGS (Nocedal and Wright 2006, alg. 7.4) or gradient descent, both with Armijo
backtracking, falling back to steepest descent when the inexact gradient misleads L-BFGS.
"""

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from facecap.config import field
from facecap.errors import ConfigError
from facecap.tune.implicit import BroydenJacobian, ImplicitMethod, adjoint
from facecap.tune.linear_rig import LinearRig
from facecap.tune.objective import Objective
from facecap.tune.sparsity import ThetaLayout
from facecap.tune.trackers import BOUND_TOLERANCE, LeastSquaresTracker, Tracker

__all__ = ["SolverConfig", "TuneProblem", "OptimiseResult", "optimise"]

log = logging.getLogger(__name__)

ARMIJO_C = 1e-4        # sufficient-decrease constant (Nocedal and Wright, eq. 3.4)
MAX_BACKTRACKS = 40    # halvings before a line search gives up
CURVATURE_EPS = 1e-12  # skip L-BFGS pairs with s.y below this times |s||y|


@dataclass
class SolverConfig:
    """How θ_T is optimised and how the tracker is differentiated."""

    optimizer: Literal["lbfgs", "gd"] = field("lbfgs", "L-BFGS or plain gradient descent, with Armijo backtracking")
    max_iters: int = field(60, "optimisation steps")
    rel_tol: float = field(1e-10, "stop when a step lowers the loss by less than rel_tol times the loss")
    memory: int = field(10, "L-BFGS history length")
    first_step: float = field(1e-2, "length of the first trial step, relative to |theta_R| (or 1 when zero)")
    implicit: ImplicitMethod = field("lm", "eq. 25 solve: 'lstsq' (normal equations), 'pinv', or 'lm' "
                                           "(Levenberg-Marquardt-damped normal equations)")
    damping: float = field(1e-8, "LM damping, relative to the mean diagonal of dR/dc^T dR/dc")
    active_set: bool = field(True, "controls the tracker left on a bound get zero derivative (seen from its "
                                   "outputs only)")
    dvhat: Literal["none", "broyden", "autograd"] = field(
        "broyden", "d vhat/d theta in eq. 25: 'none' (zero), 'broyden' (eq. 23 finite differences), 'autograd' "
                   "(exact; least-squares tracker only)")
    directions: Literal["steepest", "random"] = field("steepest", "eq. 23 directions: the current steepest "
                                                                  "descent direction, or random unit vectors")
    num_directions: int = field(1, "finite-difference directions per step")
    fd_step: float = field(1e-3, "finite-difference step s, relative to |theta_R|")
    max_rank: int = field(8, "rank kept by the warm-started Broyden estimate")
    seed: int = field(0, "seed of the random directions")

    def __post_init__(self) -> None:
        if self.max_iters < 0 or self.memory < 1 or self.num_directions < 0:
            raise ConfigError("max_iters >= 0, memory >= 1 and num_directions >= 0 are required")
        if self.fd_step <= 0 or self.first_step <= 0:
            raise ConfigError(f"fd_step and first_step must be > 0, got {self.fd_step}, {self.first_step}")


class TuneProblem:
    """The tracker, the rigs, the free entries and the objective of one optimisation stage.

    Args:
        tracker: maps offsets [N, n] to controls [N, K] with the tracking rig.
        animation_rig: θ_R, the rig the exports use; also the template for θ_T outside ``layout``.
        base_deltas: [n, K] the tracking rig's entries outside θ (from earlier stages).
        layout: the free entries (section 10).
        objective: eq. 16/55.
        targets: [N, n] performer offsets v_k.
        allowed: [N, K] bool or None, the reduced tracker T_D of section 10.2.
    """

    def __init__(self, tracker: Tracker, animation_rig: LinearRig, base_deltas: np.ndarray, layout: ThetaLayout,
                 objective: Objective, targets: np.ndarray, config: SolverConfig,
                 allowed: np.ndarray | None = None) -> None:
        self.tracker = tracker
        self.rig = animation_rig
        self.base = base_deltas
        self.layout = layout
        self.objective = objective
        self.targets = targets
        self.config = config
        self.allowed = allowed
        N, n = targets.shape
        self.jacobian = BroydenJacobian(N, n, layout.size, config.max_rank)
        self.rng = np.random.default_rng(config.seed)
        self.param_columns = np.nonzero(layout.mask)[1]
        self.evaluations = 0
        self._warm: np.ndarray | None = None

    def tracking_rig(self, theta: np.ndarray) -> LinearRig:
        return self.rig.with_deltas(self.layout.unpack(theta, self.base))

    def track(self, theta: np.ndarray) -> np.ndarray:
        """[N, K] the tracker's controls with θ_T = theta (warm-started from the last run)."""
        self.evaluations += 1
        tracked = self.tracker.track(self.tracking_rig(theta), self.targets, self.allowed, self._warm)
        self._warm = tracked
        return tracked

    def loss(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """L at θ and the tracker's controls; infinite where the tracker fails (a singular rig, section 7.1)."""
        try:
            tracked = self.track(theta)
        except (np.linalg.LinAlgError, torch.linalg.LinAlgError):
            return np.inf, np.full((self.targets.shape[0], self.rig.num_shapes), np.nan)
        if not np.isfinite(tracked).all():
            return np.inf, tracked
        return self.objective.evaluate(tracked, self.tracking_rig(theta), theta).total, tracked

    def _adjoints(self, tracked: np.ndarray, rig: LinearRig, grad_c: np.ndarray) -> np.ndarray:
        """[N, n] λ_k = (∂R/∂c)^{+T} ∂L/∂T_k over each expression's free controls."""
        cfg = self.config
        free = np.ones(tracked.shape, dtype=bool) if self.allowed is None else self.allowed.copy()
        if cfg.active_set:
            free &= (tracked > self.tracker.lower + BOUND_TOLERANCE) & (tracked < self.tracker.upper - BOUND_TOLERANCE)
        lam = np.zeros_like(self.targets)
        for k in range(tracked.shape[0]):
            F = np.flatnonzero(free[k])
            if not len(F):
                continue
            M = rig.jacobian(tracked[k])[:, F]
            damping = cfg.damping * float(np.einsum("nf,nf->", M, M)) / len(F)
            lam[k] = adjoint(M, grad_c[k, F], cfg.implicit, damping)
        return lam

    def _restrict(self, per_expression: np.ndarray) -> np.ndarray:
        """Σ_k of [N, P] per-expression gradients, each kept on its own columns (section 10)."""
        return (per_expression * self.layout.columns[:, self.param_columns]).sum(axis=0)

    def gradient(self, theta: np.ndarray, tracked: np.ndarray) -> np.ndarray:
        """[P] ∂L/∂θ by the adjoint form of eq. 25 (each term on its own columns, section 10)."""
        rig = self.tracking_rig(theta)
        value = self.objective.evaluate(tracked, rig, theta)
        lam = self._adjoints(tracked, rig, value.grad_controls)
        weights = tracked * self.layout.columns                       # [N, K]
        grad = ((value.grad_rig_residual - lam).T @ weights)[self.layout.mask]
        if self.config.dvhat == "broyden":
            grad += self._restrict(self.jacobian.apply_transpose(lam))
        elif self.config.dvhat == "autograd":
            grad += self._restrict(self._autograd_vjp(theta, lam))
        return grad + value.grad_theta

    def _autograd_vjp(self, theta: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """[N, P] λ_k^T ∂v̂_k/∂θ exactly, through the differentiable least-squares tracker."""
        if not isinstance(self.tracker, LeastSquaresTracker):
            raise ConfigError("dvhat 'autograd' needs the least-squares tracker")
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        D = torch.as_tensor(self.base).clone()
        D[torch.as_tensor(self.layout.mask)] = t
        tracked = self.tracker.track_torch(D, torch.as_tensor(self.targets), self.allowed)
        vhat = tracked @ D.T
        lam_t = torch.as_tensor(lam)
        rows = [torch.autograd.grad(vhat[k] @ lam_t[k], t, retain_graph=True)[0] for k in range(len(lam))]
        return torch.stack(rows).numpy()

    def refresh_jacobian(self, theta: np.ndarray, tracked: np.ndarray) -> None:
        """Eq. 23 updates of the ∂v̂/∂θ estimate at θ (predictor-corrector: steepest descent first)."""
        cfg = self.config
        if cfg.dvhat != "broyden" or cfg.num_directions == 0:
            return
        scale = max(float(np.linalg.norm(self.objective.theta_r)), 1.0)
        s = cfg.fd_step * scale
        vhat = self.tracking_rig(theta).evaluate(tracked)
        for _ in range(cfg.num_directions):
            if cfg.directions == "steepest":
                u = -self.gradient(theta, tracked)
            else:
                u = self.rng.standard_normal(theta.shape)
            norm = np.linalg.norm(u)
            if not norm > 0:
                return
            u /= norm
            moved = self.track(theta + s * u)
            self._warm = tracked
            fd = (self.tracking_rig(theta + s * u).evaluate(moved) - vhat) / s
            self.jacobian.update(u, fd)


@dataclass
class OptimiseResult:
    theta: np.ndarray
    loss: float
    history: list[float]
    iterations: int
    evaluations: int


def _lbfgs_direction(g: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """-H g by the two-loop recursion (Nocedal and Wright, alg. 7.4)."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs):
        a = (s @ q) / (y @ s)
        alphas.append(a)
        q -= a * y
    if pairs:
        s, y = pairs[-1]
        q *= (s @ y) / (y @ y)
    for (s, y), a in zip(pairs, reversed(alphas)):
        q += s * (a - (y @ q) / (y @ s))
    return -q


def optimise(problem: TuneProblem, theta0: np.ndarray) -> OptimiseResult:
    """Minimise the problem's objective from θ0 [P]; the loss never increases (Armijo)."""
    cfg = problem.config
    theta = theta0.copy()
    f, tracked = problem.loss(theta)
    problem.refresh_jacobian(theta, tracked)
    g = problem.gradient(theta, tracked)
    history = [f]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    first = cfg.first_step * max(float(np.linalg.norm(problem.objective.theta_r)), 1.0)
    step_guess = first / max(float(np.linalg.norm(g)), 1e-300)
    it = 0
    for it in range(1, cfg.max_iters + 1):
        d = _lbfgs_direction(g, pairs) if cfg.optimizer == "lbfgs" and pairs else -g * step_guess
        if g @ d >= 0:
            pairs.clear()
            d = -g * step_guess
        alpha, accepted = 1.0, None
        for _ in range(MAX_BACKTRACKS):
            candidate = theta + alpha * d
            f_new, tracked_new = problem.loss(candidate)
            if np.isfinite(f_new) and f_new <= f + ARMIJO_C * alpha * (g @ d):
                accepted = (candidate, f_new, tracked_new)
                break
            alpha *= 0.5
        if accepted is None:
            if pairs:
                pairs.clear()
                continue
            log.info("line search failed at iteration %d; stopping", it)
            break
        theta_new, f_new, tracked = accepted
        problem.refresh_jacobian(theta_new, tracked)
        g_new = problem.gradient(theta_new, tracked)
        s, y = theta_new - theta, g_new - g
        if s @ y > CURVATURE_EPS * np.linalg.norm(s) * np.linalg.norm(y):
            pairs.append((s, y))
            del pairs[:-cfg.memory]
        if not pairs or cfg.optimizer == "gd":
            step_guess *= alpha * (2.0 if alpha == 1.0 else 1.0)
        decrease = f - f_new
        theta, f, g = theta_new, f_new, g_new
        history.append(f)
        log.debug("iteration %d: loss %.6e", it, f)
        if decrease <= cfg.rel_tol * max(abs(f), 1e-300):
            break
    return OptimiseResult(theta=theta, loss=f, history=history, iterations=it, evaluations=problem.evaluations)
