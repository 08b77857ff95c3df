"""Trackers T(v; θ_T): meshes to controls, given the tracking rig (Omens et al. 2025, sections 5-7, 10.2).

Two kinds:

- :class:`CDTracker` wraps facecap's coordinate-descent solver (:func:`facecap.solve.cd.solve_cd`) as a
  black box: only its outputs are used, so its derivative comes from implicit differentiation
  (eq. 25) with ∂v̂/∂θ estimated by finite differences (eq. 23).
- :class:`LeastSquaresTracker` solves (box-constrained or unconstrained) linear least squares in
  torch, so autograd gives ∂T/∂θ exactly, to check the implicit machinery against.

Both take ``allowed`` [N, K] bool: False pins a control at 0. That is the reduced tracker T_D of
section 10.2 (only the expression's controls may explain its geometry); None is the full tracker.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from scipy.optimize import lsq_linear

from facecap.checks import check_shape
from facecap.config import field
from facecap.errors import ConfigError
from facecap.solve.cd import CDConfig, DeltaBasis, solve_cd
from facecap.tune.linear_rig import LinearRig

__all__ = ["Tracker", "CDTracker", "LeastSquaresTracker", "LSTrackerConfig", "BOUND_TOLERANCE"]

BOUND_TOLERANCE = 1e-9  # a control within this of a bound counts as held by it (active set)


class Tracker(Protocol):
    """Maps target offsets [N, n] to controls [N, K] with the tracking rig; ``lower``/``upper`` are its box."""

    lower: float
    upper: float

    def track(self, rig: LinearRig, targets: np.ndarray, allowed: np.ndarray | None = None,
              warm_start: np.ndarray | None = None) -> np.ndarray: ...


@dataclass
class CDTracker:
    """facecap's CD solver as a black-box tracker; expressions are independent frames (no smoothing)."""

    config: CDConfig
    lower: float = 0.0
    upper: float = 1.0

    def track(self, rig: LinearRig, targets: np.ndarray, allowed: np.ndarray | None = None,
              warm_start: np.ndarray | None = None) -> np.ndarray:
        """Controls [N, K] in [0, 1] for target offsets [N, n] (warm start [N, K] speeds up nearby solves)."""
        basis = DeltaBasis(deltas=rig.deltas, corrective_deltas=rig.corrective_deltas,
                           corrective_keys=rig.corrective_keys)
        fixed = None
        if allowed is not None:
            fixed = ~np.asarray(allowed, dtype=bool)
            start = np.zeros((targets.shape[0], rig.num_shapes)) if warm_start is None else warm_start
            warm_start = np.where(fixed, 0.0, start)
        return solve_cd(basis, targets, self.config, warm_start=warm_start, fixed_weights_mask=fixed).weights


@dataclass
class LSTrackerConfig:
    """Settings of the differentiable least-squares tracker."""

    method: Literal["solve", "lstsq", "pinv", "ridge"] = field(
        "ridge", "'solve': D c = v for square D (the paper's linear examples); 'lstsq': normal equations; "
                 "'pinv': minimum-norm pseudo-inverse; 'ridge': normal equations plus ridge * I")
    ridge: float = field(1e-6, "Levenberg-Marquardt/ridge weight added to D^T D for 'ridge' (per vertex, "
                               "scaled by the number of vertices)")
    box: bool = field(False, "keep controls in [0, 1] (bounded least squares, then the free controls' "
                             "equality-constrained solve is differentiated: the KKT implicit derivative)")


@dataclass
class LeastSquaresTracker:
    """Linear least squares in torch; :meth:`track_torch` is differentiable w.r.t. the deltas."""

    config: LSTrackerConfig

    @property
    def lower(self) -> float:
        return 0.0 if self.config.box else -np.inf

    @property
    def upper(self) -> float:
        return 1.0 if self.config.box else np.inf

    def track(self, rig: LinearRig, targets: np.ndarray, allowed: np.ndarray | None = None,
              warm_start: np.ndarray | None = None) -> np.ndarray:
        """Controls [N, K] for target offsets [N, n]; ``warm_start`` is unused (direct solve)."""
        if rig.corrective_keys.shape[0]:
            raise ConfigError("the least-squares tracker needs a rig without correctives (it is linear)")
        D = torch.as_tensor(rig.deltas, dtype=torch.float64)
        V = torch.as_tensor(np.asarray(targets, dtype=np.float64))
        with torch.no_grad():
            return self.track_torch(D, V, allowed).numpy()

    def track_torch(self, deltas: torch.Tensor, targets: torch.Tensor,
                    allowed: np.ndarray | None = None) -> torch.Tensor:
        """Controls [N, K] from deltas [n, K] and targets [N, n], differentiable w.r.t. both."""
        n, K = check_shape(deltas, "n K", "deltas").values()
        N = check_shape(targets, f"N {n}", "targets")["N"]
        free = np.ones((N, K), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool).copy()
        check_shape(free, f"{N} {K}", "allowed")
        values = torch.zeros((N, K), dtype=deltas.dtype, device=deltas.device)
        if self.config.box:
            free, values = self._active_set(deltas, targets, free)
        if free.all():
            return self._solve(deltas, targets.T).T
        rows = []
        for k in range(N):  # expressions have different free sets; N is small (Simon-Says)
            F = torch.as_tensor(np.flatnonzero(free[k]), device=deltas.device)
            rhs = targets[k] - deltas @ values[k]
            c = values[k].clone()
            if len(F):
                c = c.index_put((F,), self._solve(deltas[:, F], rhs))
            rows.append(c)
        return torch.stack(rows)

    def _solve(self, M: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        method = self.config.method
        if method == "solve":
            if M.shape[0] != M.shape[1]:
                raise ConfigError(f"method 'solve' needs a square rig matrix, got {list(M.shape)}; use 'lstsq'")
            return torch.linalg.solve(M, v)
        if method == "pinv":
            return torch.linalg.pinv(M) @ v
        normal = M.T @ M
        if method == "ridge":
            scale = max(M.shape[0] // 3, 1)
            normal = normal + self.config.ridge * scale * torch.eye(M.shape[1], dtype=M.dtype, device=M.device)
        return torch.linalg.solve(normal, M.T @ v)

    def _active_set(self, deltas: torch.Tensor, targets: torch.Tensor,
                    free: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """Bounded least squares (scipy's BVLS) to find which controls sit on a bound."""
        D = deltas.detach().cpu().numpy()
        V = targets.detach().cpu().numpy()
        values = np.zeros(free.shape)
        for k in range(free.shape[0]):
            cols = np.flatnonzero(free[k])
            if not len(cols):
                continue
            sol = lsq_linear(D[:, cols], V[k], bounds=(0.0, 1.0), method="bvls").x
            at_bound = (sol <= BOUND_TOLERANCE) | (sol >= 1.0 - BOUND_TOLERANCE)
            values[k, cols] = np.where(sol >= 1.0 - BOUND_TOLERANCE, 1.0, 0.0)
            free[k, cols[at_bound]] = False
        return free, torch.as_tensor(values, dtype=deltas.dtype, device=deltas.device)
