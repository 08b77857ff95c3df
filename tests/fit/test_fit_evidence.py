"""The per-shape evidence of the fit's normal equations (facecap.testing.evidence)."""

import dataclasses

import numpy as np
import pytest
import torch

from facecap.fit.problem import POSE_PARAMS
from facecap.testing.evidence import shape_evidence


def _normal_matrix(shapes: np.ndarray, identities: int = 0, coupling: float = 0.0) -> torch.Tensor:
    """[P, P] of one frame: ``shapes`` [K, K] for the weights, a unit pose block, and ``identities`` unit
    identity unknowns coupled to the first weight by ``coupling``."""
    K = len(shapes)
    P = K + POSE_PARAMS + identities
    H = np.eye(P)
    H[:K, :K] = shapes
    H[0, K + POSE_PARAMS:] = H[K + POSE_PARAMS:, 0] = coupling
    return torch.as_tensor(H)


def test_effective_curvature_is_what_the_other_shapes_leave():
    a0, a1, a2, rho = 4.0, 9.0, 2.0, 0.8
    c = rho * np.sqrt(a0 * a1)                                # shapes 0 and 1 move the same pixels
    slope = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)
    ev = shape_evidence(_normal_matrix(np.array([[a0, c, 0], [c, a1, 0], [0, 0, a2]])),
                        torch.full((1, 3), 0.5), slope)
    np.testing.assert_allclose(ev.own, [a0, a1, a2])
    np.testing.assert_allclose(ev.effective, [a0 * (1 - rho ** 2), a1 * (1 - rho ** 2), a2], rtol=1e-9)
    np.testing.assert_allclose(ev.kept, [1 - rho ** 2, 1 - rho ** 2, 1], rtol=1e-9)
    np.testing.assert_allclose(ev.shrinkage, slope[0].numpy() / ev.effective)


def test_prior_shift_minimises_the_model_with_the_shapes_that_are_off_held():
    a0, a1, a2, c = 4.0, 9.0, 2.0, 3.0
    shapes = np.array([[a0, c, 0], [c, a1, 0], [0, 0, a2]])
    slope = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)
    both_on = shape_evidence(_normal_matrix(shapes), torch.tensor([[0.4, 0.2, 0.1]]), slope)
    # ½ Δᵀ H Δ + sᵀ Δ over shapes 0 and 1 (coupled) and 2 (alone): Δ = −H⁻¹ s, by Cramer's rule
    det = a0 * a1 - c * c
    np.testing.assert_allclose(both_on.prior_shift, [-(a1 * 0.1 - c * 0.2) / det, -(a0 * 0.2 - c * 0.1) / det,
                                                     -0.3 / a2], rtol=1e-9)
    one_off = shape_evidence(_normal_matrix(shapes), torch.tensor([[0.4, 0.0, 0.1]]), slope)
    np.testing.assert_allclose(one_off.prior_shift, [-0.1 / a0, 0.0, -0.3 / a2], rtol=1e-9)


def test_the_shared_identity_is_left_out():
    shapes = np.array([[4.0, 1.0], [1.0, 3.0]])
    weights, slope = torch.full((1, 2), 0.3), torch.tensor([[0.1, 0.1]])
    alone = shape_evidence(_normal_matrix(shapes), weights, slope)
    coupled = shape_evidence(_normal_matrix(shapes, identities=2, coupling=0.9), weights, slope)
    for field in dataclasses.fields(alone):
        np.testing.assert_allclose(getattr(coupled, field.name), getattr(alone, field.name))


def test_frames_coupled_by_the_albedo_share_their_evidence():
    """Two frames whose first weights explain the same colour change (as a shared albedo couples
    them): each keeps 1 − ρ² of its curvature, and the prior's shift follows the coupled inverse."""
    K, Pf = 2, 2 + POSE_PARAMS
    H = torch.block_diag(_normal_matrix(np.diag([4.0, 5.0])), _normal_matrix(np.diag([4.0, 5.0])))
    rho = 0.5
    H[0, Pf] = H[Pf, 0] = rho * 4.0
    ev = shape_evidence(H, torch.full((2, K), 0.5), torch.full((2, K), 0.2, dtype=torch.float64))
    np.testing.assert_allclose(ev.effective, [4.0 * (1 - rho ** 2), 5.0], rtol=1e-9)
    np.testing.assert_allclose(ev.prior_shift, [-0.2 / (4.0 * (1 + rho)), -0.2 / 5.0], rtol=1e-9)


def test_means_over_frames():
    H = torch.block_diag(_normal_matrix(np.diag([2.0, 8.0])), _normal_matrix(np.diag([6.0, 8.0])))
    ev = shape_evidence(H, torch.full((2, 2), 0.5), torch.tensor([[0.2, 0.4], [0.6, 0.4]]))
    np.testing.assert_allclose(ev.own, [4.0, 8.0])
    np.testing.assert_allclose(ev.prior_slope, [0.4, 0.4])
    np.testing.assert_allclose(ev.prior_shift, [-(0.1 + 0.1) / 2, -0.05])
    assert ev.shrinkage[0] == pytest.approx(0.1)
