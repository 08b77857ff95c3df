"""How firmly a take determines each shape's weight, and how far the sparsity prior moves it.

The data terms' curvature for a weight alone (the normal matrix's diagonal) overstates what the
images say about it when other unknowns explain the same pixels: other shapes that move them
(ICT's eyeSquint raises the lower lid and the cheek, as cheekSquint and the eyeLook shapes do),
and each frame's albedo, which may take up a colour change that a shape would have made. What
is left with the batch's other unknowns free is the effective curvature, 1 / (H⁻¹)ₖₖ. The prior's
slope alone would move the weight by slope / effective curvature (its shrinkage); all the
slopes together, with the shapes that are off held at 0, move the weights by −H⁻¹ times the
slopes (the prior's shift). ``tools/probe_evidence.py`` prints them beside a fit's errors.
"""

from dataclasses import dataclass

import numpy as np
import torch

from facecap.fit.config import LossWeights
from facecap.fit.linearise import linearise
from facecap.fit.optimize import (FIRST_APPEARANCE_ROUNDS, data_normal_matrix, initial_appearance, sample_visibility,
                                  sparsity_penalty)
from facecap.fit.problem import POSE_PARAMS, BatchObservations, FitModel, SequenceState

__all__ = ["ShapeEvidence", "shape_evidence", "evidence_at"]


@dataclass
class ShapeEvidence:
    """Per shape [K], means over the batch's frames: the data terms' curvature for the weight alone
    (``own``) and with the batch's other weights and poses free (``effective``), the sparsity prior's
    slope, and how far the prior moves the weights from the data's minimum, the shapes that are on
    (and the poses) free and the rest held at 0 (``prior_shift``)."""

    own: np.ndarray
    effective: np.ndarray
    prior_slope: np.ndarray
    prior_shift: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """[K] the share of a shape's curvature that the other unknowns cannot take over."""
        return self.effective / np.maximum(self.own, 1e-300)

    @property
    def shrinkage(self) -> np.ndarray:
        """[K] how far the prior's slope alone moves each weight from the data's minimum."""
        return self.prior_slope / np.maximum(self.effective, 1e-300)


def shape_evidence(H: torch.Tensor, weights: torch.Tensor, prior_slope: torch.Tensor) -> ShapeEvidence:
    """The evidence in a batch's normal matrix over its frames' unknowns, [B (K + 6)]² (each frame's
    K weights then its pose; the shared identity, which the take pins, left out), at ``weights``
    [B, K], for the prior's slopes [B, K]."""
    B, K = weights.shape
    Pf = K + POSE_PARAMS
    H = H[:B * Pf, :B * Pf].to(torch.float64)
    eye = torch.eye(B * Pf, dtype=H.dtype, device=H.device)
    H = H + 1e-12 * H.diagonal().max().clamp_min(1e-300) * eye

    def per_shape(a: torch.Tensor) -> np.ndarray:                          # [B Pf] -> [K], mean over frames
        return a.view(B, Pf)[:, :K].mean(0).cpu().numpy()
    slope = prior_slope.to(torch.float64)
    free = torch.cat([weights > 0, torch.ones(B, POSE_PARAMS, dtype=torch.bool, device=weights.device)], 1).view(-1)
    held_out = torch.where(free[:, None] & free[None, :], H, eye)            # held weights: decoupled unit rows
    pull = torch.cat([torch.where(weights > 0, slope, 0.0), slope.new_zeros(B, POSE_PARAMS)], 1).view(-1)
    return ShapeEvidence(own=per_shape(H.diagonal()), effective=per_shape(1 / torch.linalg.inv(H).diagonal()),
                         prior_slope=slope.mean(0).cpu().numpy(),
                         prior_shift=per_shape(-torch.linalg.solve(held_out, pull)))


@torch.no_grad()
def evidence_at(model: FitModel, state: SequenceState, frames: np.ndarray, obs: BatchObservations,
                loss: LossWeights) -> ShapeEvidence:
    """The evidence of ``frames`` at the state's parameters, as the fit's data terms and prior see it:
    the appearance is solved there (from the state's, else from the images), the geometry held."""
    p = state.frame_params(torch.as_tensor(np.asarray(frames), device=state.weights.device))
    visible = sample_visibility(model, p)
    appearance = state.appearance if state.appearance is not None else initial_appearance(model, p, obs, visible)
    lin = linearise(model, p, obs, visible, appearance, state.appearance_stats, loss, FIRST_APPEARANCE_ROUNDS)
    K = p.weights.shape[1]
    _, slope = sparsity_penalty(p.weights.to(torch.float64), loss.l1 / K, loss.l1_scale)
    return shape_evidence(data_normal_matrix(lin, K), p.weights, slope)
