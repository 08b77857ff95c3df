"""Per-batch analysis-by-synthesis optimisation of weights, head pose, identity and appearance.

Frames are optimised a batch at a time (their own leaf tensors and Adam state), the neighbouring
two frames on each side entering the temporal terms as constants; the final pass sweeps the
batches again with the temporal terms on, which couples the whole sequence (a block
Gauss-Seidel over time). Weights are kept in [0, 1] by projection after every step.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors, project_points
from facecap.geometry.rotations import rotation_6d_to_matrix
from facecap.render.shading import vertex_normals
from facecap.rig.evaluate import TorchRig
from facecap.solve.fit.appearance import Appearance, initial_albedo, sample_images, splat_visibility
from facecap.solve.fit.config import FitConfig
from facecap.solve.fit.losses import charbonnier, l1_sparsity, landmark_loss, second_difference_loss

__all__ = ["FitModel", "SequenceState", "BatchObservations", "optimise_batch", "batches", "as_numpy_pose",
           "TEMPORAL_CONTEXT"]

log = logging.getLogger(__name__)

TEMPORAL_CONTEXT = 2  # frames on each side that second differences reach


@dataclass
class FitModel:
    """What stays fixed during the fit: the rig on the device, cameras, and index sets.

    Attributes:
        rig: the tracking rig in the calibration's units; faces: [F, 3] long.
        cams: the take's cameras; samples: [N] face-region vertices sampled photometrically;
        landmarks: [L] rig landmark vertices.
    """

    rig: TorchRig
    faces: torch.Tensor
    cams: CameraTensors
    samples: torch.Tensor
    landmarks: torch.Tensor


@dataclass
class SequenceState:
    """The whole take's parameters between batches (plain tensors, no grad).

    Attributes: weights [T, K]; rot6d [T, 6]; trans [T, 3]; identity [I]; appearance (None until
    the first batch has estimated the albedo).
    """

    weights: torch.Tensor
    rot6d: torch.Tensor
    trans: torch.Tensor
    identity: torch.Tensor
    appearance: Appearance | None = None


@dataclass
class BatchObservations:
    """Observations of one batch of frames at one image scale.

    Attributes: images [B, C, 3, H', W'] in [0, 1]; points [B, C, L, 2] landmarks in full-resolution
    pixels; confidence [B, C, L]; scale: H' / H.
    """

    images: torch.Tensor
    points: torch.Tensor
    confidence: torch.Tensor
    scale: float


def _context(x: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = max(0, start - TEMPORAL_CONTEXT), min(len(x), stop + TEMPORAL_CONTEXT)
    return x[lo:start], x[stop:hi]


def _with_context(param: torch.Tensor, full: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    before, after = _context(full, start, stop)
    return torch.cat([before, param, after])


def optimise_batch(model: FitModel, state: SequenceState, start: int, obs: BatchObservations, config: FitConfig,
                   iterations: int, temporal: bool) -> list[float]:
    """Optimise frames [start, start + B) in place in ``state``; returns the loss per iteration."""
    B = obs.images.shape[0]
    stop = start + B
    loss_cfg, sched = config.loss, config.schedule
    weights = state.weights[start:stop].clone().requires_grad_(True)
    rot6d = state.rot6d[start:stop].clone().requires_grad_(True)
    trans = state.trans[start:stop].clone().requires_grad_(True)
    identity = state.identity.clone().requires_grad_(state.identity.numel() > 0)
    samples, lm = model.samples, model.landmarks

    def pose_mesh() -> tuple[torch.Tensor, torch.Tensor]:
        R = rotation_6d_to_matrix(rot6d)
        verts = model.rig.evaluate(weights, R, trans, identity=identity if identity.numel() else None)
        return verts, vertex_normals(verts, model.faces)

    with torch.no_grad():
        verts, normals = pose_mesh()
        visible = splat_visibility(verts[:, samples], normals[:, samples], model.cams, verts)
        pixels = project_points(verts[:, samples], model.cams) * obs.scale + (obs.scale - 1) / 2
        observed = sample_images(obs.images, pixels)
        if state.appearance is None:
            state.appearance = Appearance.neutral(initial_albedo(observed, visible), len(model.cams))
    appearance = Appearance(*(p.clone().requires_grad_(True) for p in state.appearance.parameters()))
    vis = visible.to(weights.dtype)
    groups = [{"params": [weights], "lr": sched.lr_weights}, {"params": [rot6d], "lr": sched.lr_rotation},
              {"params": [trans], "lr": sched.lr_translation},
              {"params": appearance.parameters(), "lr": sched.lr_appearance}]
    if identity.numel():
        groups.append({"params": [identity], "lr": sched.lr_identity})
    optimiser = torch.optim.Adam(groups)
    history = []
    for _ in range(iterations):
        optimiser.zero_grad(set_to_none=True)
        verts, normals = pose_mesh()
        pixels = project_points(verts[:, samples], model.cams) * obs.scale + (obs.scale - 1) / 2
        observed = sample_images(obs.images, pixels)
        predicted = appearance.predict(normals[:, samples])
        photo = (charbonnier(predicted - observed, loss_cfg.photometric_eps).sum(-1) * vis).sum() / vis.sum().clamp_min(1)
        lm_px = project_points(verts[:, lm], model.cams)
        loss = loss_cfg.photometric * photo + loss_cfg.landmark * landmark_loss(
            lm_px, obs.points, obs.confidence, loss_cfg.landmark_eps_px)
        loss = loss + loss_cfg.l1 * l1_sparsity(weights)
        if identity.numel():
            loss = loss + loss_cfg.identity_prior * (identity * identity).sum()
        if temporal:
            loss = loss + loss_cfg.smooth_weights * second_difference_loss(
                _with_context(weights, state.weights, start, stop))
            loss = loss + loss_cfg.smooth_pose * (
                second_difference_loss(_with_context(rot6d, state.rot6d, start, stop))
                + second_difference_loss(_with_context(trans, state.trans, start, stop)))
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            weights.clamp_(0.0, 1.0)
        history.append(float(loss.detach()))
    with torch.no_grad():
        state.weights[start:stop] = weights.detach()
        state.rot6d[start:stop] = rot6d.detach()
        state.trans[start:stop] = trans.detach()
        state.identity = identity.detach()
        state.appearance = Appearance(*(p.detach() for p in appearance.parameters()))
    return history


def batches(num_frames: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering the take."""
    return [(s, min(s + size, num_frames)) for s in range(0, num_frames, max(1, size))]


def as_numpy_pose(state: SequenceState) -> tuple[np.ndarray, np.ndarray]:
    """[T, 3, 3] rotations and [T, 3] translations of ``state`` in float64."""
    R = rotation_6d_to_matrix(state.rot6d.double()).cpu().numpy()
    return R, state.trans.double().cpu().numpy()
