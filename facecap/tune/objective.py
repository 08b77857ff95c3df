"""The rig-tuning objective (Omens et al. 2025, eqs. 16, 17 and 55, with section 10.2's filters).

    L(θ_T) = 1/N Σ_k [ γ1 ‖F_k (T_k - c_k)‖² + γ1s ‖S_k T_k‖²
                       + γ2/V ‖R(H_k T_k; θ_R) - v'_k‖² + γ3/V ‖R(T_k; θ_T) - v_k‖² ] + γε/V ‖θ_T - θ_R‖²

T_k = T(v_k; θ_T) are the tracker's controls. H_k = diag(H(|c_k|)) is the Heaviside filter of
section 10.2 (T_H = H T); F_k is H_k (filter "active") or the identity ("all"); S_k = I - H_k
selects the spurious controls that stage 3 of section 11 drives to zero. v'_k is the performer's
mesh v_k (eq. 16) or v⁺_k = R(c_k; θ_R) (eq. 55). Geometry terms are divided by the vertex count V
and everything by N, so that the γ's do not depend on mesh or set size (a rescaling of eq. 16's γ's).
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from facecap.checks import check_shape
from facecap.config import field, require_non_negative
from facecap.tune.linear_rig import LinearRig
from facecap.tune.sparsity import active_controls

__all__ = ["ObjectiveWeights", "Objective", "ObjectiveValue"]


@dataclass
class ObjectiveWeights:
    """The γ's of eqs. 16/17/55 and which controls each term sees."""

    gamma1: float = field(1.0, "weight of the control term ||T(v_k) - c_k||^2 (eq. 16)")
    gamma1_spurious: float = field(0.0, "weight of the extra gamma1^H term pulling the controls that are zero "
                                        "in c_k to zero (section 11, stage 3)")
    gamma2: float = field(0.0, "weight of the animation-rig geometry term ||R(T(v_k); theta_R) - v_k||^2 "
                               "per vertex (eq. 16)")
    gamma3: float = field(0.0, "weight of the tracking-rig geometry term ||R(T(v_k); theta_T) - v_k||^2 "
                               "per vertex (eq. 17)")
    gamma_eps: float = field(0.0, "weight of ||theta_T - theta_R||^2 per vertex: keeps the tracking rig near "
                                  "the animation rig (eq. 16)")
    filter: Literal["all", "active"] = field("all", "'active': Heaviside-filter the gamma1 and gamma2 terms to "
                                                    "the controls non-zero in c_k (T_H, section 10.2)")
    mesh_target: Literal["mesh", "rig"] = field("mesh", "gamma2's target: the performer mesh v_k (eq. 16) or "
                                                       "v+ = R(c_k; theta_R) (eq. 55)")

    def __post_init__(self) -> None:
        require_non_negative(self, ["gamma1", "gamma1_spurious", "gamma2", "gamma3", "gamma_eps"])


@dataclass(frozen=True)
class ObjectiveValue:
    """The loss, its terms, and its partial derivatives.

    Attributes:
        total: L. terms: each term's share (keys gamma1, gamma1_spurious, gamma2, gamma3, gamma_eps).
        grad_controls: [N, K] ∂L/∂T_k (what the implicit adjoint carries to θ).
        grad_rig_residual: [N, n] the direct part of ∂L/∂D through R(·; θ_T) in the γ3 term:
            ∂L/∂D = Σ_k grad_rig_residual_k T_k^T (restricted to expression k's columns).
        grad_theta: [P] ∂(γε term)/∂θ.
    """

    total: float
    terms: dict[str, float]
    grad_controls: np.ndarray
    grad_rig_residual: np.ndarray
    grad_theta: np.ndarray


class Objective:
    """Eq. 16/17/55 for intended controls [N, K] and performer offsets [N, n] from the neutral."""

    def __init__(self, weights: ObjectiveWeights, animation_rig: LinearRig, controls: np.ndarray,
                 targets: np.ndarray, theta_r: np.ndarray, active_threshold: float = 0.0) -> None:
        K, n = animation_rig.num_shapes, animation_rig.num_coords
        N = check_shape(controls, f"N {K}", "controls")["N"]
        check_shape(targets, f"{N} {n}", "targets")
        self.weights = weights
        self.rig = animation_rig
        self.controls = np.asarray(controls, dtype=np.float64)
        self.targets = np.asarray(targets, dtype=np.float64)
        self.theta_r = theta_r
        self.active = active_controls(self.controls, active_threshold).astype(np.float64)
        self.control_filter = self.active if weights.filter == "active" else np.ones_like(self.active)
        self.geometry_target = (self.targets if weights.mesh_target == "mesh"
                                else animation_rig.evaluate(self.controls))

    def evaluate(self, tracked: np.ndarray, tracking_rig: LinearRig, theta: np.ndarray) -> ObjectiveValue:
        """L and its partials at the tracker's controls ``tracked`` [N, K] and θ_T."""
        w = self.weights
        N = self.controls.shape[0]
        V = self.rig.num_vertices
        grad_c = np.zeros_like(tracked)
        grad_r = np.zeros_like(self.targets)
        terms = {}
        e1 = self.control_filter * (tracked - self.controls)
        terms["gamma1"] = w.gamma1 * float((e1 ** 2).sum()) / N
        grad_c += 2 * w.gamma1 / N * self.control_filter * e1
        spurious = 1.0 - self.active
        terms["gamma1_spurious"] = w.gamma1_spurious * float(((spurious * tracked) ** 2).sum()) / N
        grad_c += 2 * w.gamma1_spurious / N * spurious * tracked
        terms["gamma2"] = 0.0
        if w.gamma2:
            filtered = self.control_filter * tracked
            r2 = self.rig.evaluate(filtered) - self.geometry_target
            terms["gamma2"] = w.gamma2 * float((r2 ** 2).sum()) / (N * V)
            for k in range(N):
                grad_c[k] += 2 * w.gamma2 / (N * V) * self.control_filter[k] * (
                    self.rig.jacobian(filtered[k]).T @ r2[k])
        terms["gamma3"] = 0.0
        if w.gamma3:
            r3 = tracking_rig.evaluate(tracked) - self.targets
            terms["gamma3"] = w.gamma3 * float((r3 ** 2).sum()) / (N * V)
            grad_r = 2 * w.gamma3 / (N * V) * r3
            for k in range(N):
                grad_c[k] += tracking_rig.jacobian(tracked[k]).T @ grad_r[k]
        diff = theta - self.theta_r
        terms["gamma_eps"] = w.gamma_eps * float(diff @ diff) / V
        return ObjectiveValue(total=float(sum(terms.values())), terms=terms, grad_controls=grad_c,
                              grad_rig_residual=grad_r, grad_theta=2 * w.gamma_eps / V * diff)
