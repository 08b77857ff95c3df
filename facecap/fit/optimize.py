"""Analysis by synthesis by Gauss-Newton over batches of frames.

Per frame the unknowns are the weights, a rotation increment and a translation; the identity
coefficients are shared by the take. The residuals are the sampled colours against the
appearance model (Charbonnier, by iteratively reweighted least squares), the landmark
reprojections and the mesh outline's distances to the head's outline in the image;
a sparsity prior (l1, or its log-sum refinement; in the sweeps, relaxed on the weights already on:
:func:`freed_from_prior`), temporal second differences and an identity prior regularise them. Each
iteration solves the batch's whole dense normal system (a few hundred unknowns) with Levenberg-Marquardt
damping and an active set for the [0, 1] box, then solves the appearance exactly
(:func:`facecap.fit.appearance.solve_appearance`). Gauss-Newton converges in a handful of
iterations where first-order descent needs hundreds, and it has no step size to tune.

Frames outside the batch (two on each side) enter the temporal terms as
constants; later passes sweep the batches again, a block Gauss-Seidel over the take.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch

from facecap.camera.torch_camera import project_points
from facecap.fit.appearance import Appearance, initial_albedo, sample_images
from facecap.fit.config import LossWeights
from facecap.fit.linearise import Linearisation, linearise
from facecap.fit.outline import Outline
from facecap.fit.problem import POSE_PARAMS, BatchEvidence, BatchObservations, FitModel, FrameParams, SequenceState
from facecap.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = ["BatchFit", "optimise_batch", "batch_evidence", "batches", "sparsity_penalty", "freed_from_prior",
           "data_normal_matrix", "box_constrained_step", "apply_step", "second_difference_gram", "sample_visibility",
           "face_brightness", "initial_appearance", "TEMPORAL_CONTEXT", "FIRST_APPEARANCE_ROUNDS"]

log = logging.getLogger(__name__)

TEMPORAL_CONTEXT = 2  # frames on each side that second differences reach
FIRST_APPEARANCE_ROUNDS = 5  # appearance alternations before the first geometry step of a take
DAMPING_UP, DAMPING_DOWN, DAMPING_MIN, DAMPING_MAX = 4.0, 2.0, 1e-2, 1e6  # near-null directions need the floor
OUTLINE_REFRESH = 3  # accepted steps between searches for the outline's edges (energies compare on the same ones)
MAX_ACTIVE_SET_ROUNDS = 20  # solves of the box-constrained step (a few are typical); apply_step clamps the rest


def second_difference_gram(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[n, n] S^T S of the second-difference operator S over n frames (zero below 3 frames)."""
    S = torch.zeros(max(n - 2, 0), n, dtype=dtype, device=device)
    rows = torch.arange(max(n - 2, 0), device=device)
    S[rows, rows], S[rows, rows + 1], S[rows, rows + 2] = 1.0, -2.0, 1.0
    return S.T @ S


def _temporal_terms(state: SequenceState, p: FrameParams, start: int, loss: LossWeights,
                    head_radius: float) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Second-difference smoothness of weights and pose over the batch and its fixed context.

    Returns the energy, the per-frame gradient [B, K + 6], the unit frame-coupling Hessian
    [B, B] (2 S^T S restricted to the batch) and the per-parameter scale [K + 6] it multiplies.
    """
    B, K = p.weights.shape
    stop = start + B
    lo, hi = max(0, start - TEMPORAL_CONTEXT), min(len(state.weights), stop + TEMPORAL_CONTEXT)
    inner = slice(start - lo, start - lo + B)

    def extended(full: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat([full[lo:start], batch, full[stop:hi]]).to(torch.float64)

    R_ext = extended(state.R, p.R)
    rotation = matrix_to_axis_angle(R_ext @ R_ext[:1].transpose(-1, -2))  # small angles within a few frames
    x = torch.cat([extended(state.weights, p.weights), rotation, extended(state.t, p.t)], 1)  # [n, K + 6]
    scale = torch.cat([torch.full((K,), loss.smooth_weights / K, dtype=x.dtype, device=x.device),
                       torch.full((3,), loss.smooth_pose * head_radius ** 2, dtype=x.dtype, device=x.device),
                       torch.full((3,), loss.smooth_pose, dtype=x.dtype, device=x.device)])
    gram = second_difference_gram(len(x), x.dtype, x.device)
    energy = float((scale * x * (gram @ x)).sum())
    grad = 2 * (gram @ x)[inner] * scale
    return energy, grad, 2 * gram[inner, inner], scale


def sparsity_penalty(weights: torch.Tensor, slope: float | torch.Tensor, scale: float) -> tuple[float, torch.Tensor]:
    """Energy and gradient of the sparsity prior on ``weights``, whose slope at 0 is ``slope`` (a number, or
    one per weight).

    With ``scale`` > 0 it is the log-sum penalty slope · s · log(1 + w / s) (Candès, Wakin and Boyd,
    "Enhancing sparsity by reweighted l1 minimization", 2008), else plain l1. With the same slope at 0
    it zeroes as many weights as l1, but its slope halves by w = s, so it shrinks active weights less.
    It is concave, so its tangent majorises it: Gauss-Newton takes it as the l1 reweighted at the
    current weights, with no curvature term, and every step that lowers that model lowers it too.
    """
    if scale <= 0:
        return float((slope * weights).sum()), slope * torch.ones_like(weights)
    return float((slope * scale * torch.log1p(weights / scale)).sum()), slope * scale / (scale + weights)


def freed_from_prior(on: torch.Tensor, JtJ: torch.Tensor, max_cosine: float) -> torch.Tensor:
    """[B, K] which weights ``on`` (weights at or above the relaxed lasso's threshold) lose the sparsity prior.

    An on weight keeps the prior where a shape that is off could stand in for it: their columns in the
    frame's data normal matrix ``JtJ`` [B, P, P] (weights first) have a cosine above ``max_cosine``. There the
    data cannot tell them apart, and freeing the one that happens to be on would let it keep what the
    other explains (a blink fitted as a downward gaze).
    """
    K = on.shape[1]
    H = JtJ[:, :K, :K].to(torch.float64)
    norm = torch.diagonal(H, dim1=1, dim2=2).clamp_min(1e-30).sqrt()
    cosine = (H / norm[:, :, None] / norm[:, None, :]).abs()
    cosine = cosine.masked_fill(torch.eye(K, dtype=torch.bool, device=H.device), 0.0)
    stand_in = ((cosine > max_cosine) & ~on[:, None, :]).any(-1)
    return on & ~stand_in


def data_normal_matrix(lin: Linearisation, num_shapes: int) -> torch.Tensor:
    """The data terms' Gauss-Newton matrix over [frame 0 params, ..., frame B-1 params, identity], the
    shared albedo eliminated: [B (K + 6) + I]²."""
    JtJ = lin.JtJ.to(torch.float64)
    B, P = JtJ.shape[:2]
    Pf = num_shapes + POSE_PARAMS
    I = P - Pf
    n = B * Pf + I
    H = torch.zeros(n, n, dtype=torch.float64, device=JtJ.device)
    H[:B * Pf, :B * Pf] = torch.block_diag(*JtJ[:, :Pf, :Pf])
    H[:B * Pf, B * Pf:] = JtJ[:, :Pf, Pf:].reshape(B * Pf, I)
    H[B * Pf:, :B * Pf] = H[:B * Pf, B * Pf:].T
    H[B * Pf:, B * Pf:] = JtJ[:, Pf:, Pf:].sum(0)
    return H - lin.albedo_coupling


def _system(lin: Linearisation, state: SequenceState, p: FrameParams, start: int | None, loss: LossWeights,
            head_radius: float, freed: torch.Tensor | None = None
            ) -> tuple[float, dict[str, float], torch.Tensor, torch.Tensor]:
    """Total energy and the dense normal system over [frame 0 params, ..., frame B-1 params, identity].

    ``start`` is the first frame of a run of consecutive frames, or None for scattered frames (no temporal terms).
    ``freed`` [B, K]: weights without the sparsity prior (:func:`freed_from_prior`), or None.
    """
    B, K = p.weights.shape
    I = p.identity.numel()
    Pf = K + POSE_PARAMS
    H = data_normal_matrix(lin, K)
    grad = lin.grad.to(torch.float64)
    g_frames = grad[:, :Pf].clone()
    g_identity = grad[:, Pf:].sum(0)
    terms = dict(lin.terms)

    slope = loss.l1 / K if freed is None else (loss.l1 / K) * (~freed).to(torch.float64)
    terms["l1"], g_sparsity = sparsity_penalty(p.weights.to(torch.float64), slope, loss.l1_scale)
    g_frames[:, :K] += g_sparsity
    if start is not None:
        terms["temporal"], g_temporal, coupling, scale = _temporal_terms(state, p, start, loss, head_radius)
        g_frames += g_temporal
        H[:B * Pf, :B * Pf] += torch.kron(coupling, torch.diag(scale))
    if I:
        identity = p.identity.to(torch.float64)
        terms["identity"] = float(loss.identity_prior * (identity * identity).sum())
        g_identity = g_identity + 2 * loss.identity_prior * identity
        H[B * Pf:, B * Pf:] += 2 * loss.identity_prior * torch.eye(I, dtype=H.dtype, device=H.device)
        if state.identity_information is not None:
            info = state.identity_information.to(torch.float64)
            eta = state.identity_eta.to(torch.float64)
            terms["identity"] += float(0.5 * identity @ info @ identity - eta @ identity)
            g_identity = g_identity + info @ identity - eta
            H[B * Pf:, B * Pf:] += info
    g = torch.cat([g_frames.reshape(-1), g_identity])
    return sum(terms.values()), terms, H, g


def box_constrained_step(H: torch.Tensor, g: torch.Tensor, p: FrameParams, damping: float) -> torch.Tensor:
    """Levenberg-Marquardt step that minimises the damped model inside the weights' [0, 1] box.

    A primal-dual active set: weights the solve carries past a bound, or that sit on one the
    model's gradient pushes past, are held there and the rest solved again, until the sets settle.
    Clamping the unconstrained step instead (a third of the weights sit at 0) wrecks it: the
    clamped step is no longer a descent direction and most iterations were rejected.
    """
    B, K = p.weights.shape
    Pf = K + POSE_PARAMS
    w = p.weights.to(torch.float64).reshape(-1)
    boxed = torch.zeros_like(g, dtype=torch.bool)
    boxed[:B * Pf].view(B, Pf)[:, :K] = True
    lower, upper = torch.full_like(g, -torch.inf), torch.full_like(g, torch.inf)
    lower[boxed], upper[boxed] = -w, 1 - w
    diag = torch.diagonal(H)
    A = H + torch.diag(damping * diag + 1e-12 * diag.max().clamp_min(1e-30))
    step = torch.zeros_like(g)
    at_lower, at_upper = boxed & (lower == 0) & (g > 0), boxed & (upper == 0) & (g < 0)
    for _ in range(MAX_ACTIVE_SET_ROUNDS):
        held = at_lower | at_upper
        step = torch.where(at_lower, lower, torch.where(at_upper, upper, 0.0))
        free = ~held
        step[free] = torch.linalg.solve(A[free][:, free], -(g + A[:, held] @ step[held])[free])
        model_grad = A @ step + g
        new_lower = boxed & ((free & (step < lower)) | (at_lower & (model_grad > 0)))
        new_upper = boxed & ((free & (step > upper)) | (at_upper & (model_grad < 0)))
        if torch.equal(new_lower, at_lower) and torch.equal(new_upper, at_upper):
            break
        at_lower, at_upper = new_lower, new_upper
    return step


def apply_step(p: FrameParams, step: torch.Tensor) -> FrameParams:
    B, K = p.weights.shape
    Pf = K + POSE_PARAMS
    frames = step[:B * Pf].reshape(B, Pf).to(p.weights.dtype)
    rotation = axis_angle_to_matrix(frames[:, K:K + 3])
    return FrameParams(weights=(p.weights + frames[:, :K]).clamp(0.0, 1.0), R=rotation @ p.R,
                   t=p.t + frames[:, K + 3:], identity=p.identity + step[B * Pf:].to(p.identity.dtype))


def batch_evidence(lin: Linearisation, p: FrameParams) -> BatchEvidence:
    """The batch's appearance normal equations and its information on the identity, its frames' own
    parameters eliminated (the Schur complement of their block of the normal matrix)."""
    I = p.identity.numel()
    if not I:
        return BatchEvidence(lin.appearance_stats)
    JtJ = lin.JtJ.to(torch.float64)
    Pf = JtJ.shape[-1] - I
    ff, fi, ii = JtJ[:, :Pf, :Pf], JtJ[:, :Pf, Pf:], JtJ[:, Pf:, Pf:]
    ridge = 1e-9 * torch.diagonal(ff, dim1=1, dim2=2).amax(-1).clamp_min(1e-30)[:, None, None]
    eye = torch.eye(Pf, dtype=ff.dtype, device=ff.device)
    info = (ii - fi.transpose(1, 2) @ torch.linalg.solve(ff + ridge * eye, fi)).sum(0)
    return BatchEvidence(lin.appearance_stats, info, info @ p.identity.to(torch.float64))


def sample_visibility(model: FitModel, p: FrameParams, view_ok: torch.Tensor | None = None) -> torch.Tensor:
    """[B, C, N] which cameras see each photometric sample of the frames ``p``, in the views that ``view_ok``
    [B, C] says were read (None: all)."""
    return _visible_samples(model, model.rig.evaluate(p.weights, p.R, p.t, identity=p.identity), view_ok)


def _visible_samples(model: FitModel, verts: torch.Tensor, view_ok: torch.Tensor | None = None) -> torch.Tensor:
    """[B, C, N] which cameras see each photometric sample of the posed vertices [B, V, 3], in the views read."""
    visible = model.visible_samples(verts)
    return visible if view_ok is None else visible & view_ok[..., None]


def _sample_colours(model: FitModel, verts: torch.Tensor, images: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """[B, C, N, 3] the colours at the samples of posed vertices [B, V, 3] in [B, C, 3, H, W] ``images`` at
    ``scale`` of the cameras' resolution."""
    pixels = project_points(verts[:, model.samples], model.cams) * scale + (scale - 1) / 2
    return sample_images(images, pixels)


def face_brightness(model: FitModel, p: FrameParams, images: torch.Tensor,
                    view_ok: torch.Tensor | None = None) -> float:
    """The median colour value over the samples the cameras see in [B, C, 3, H, W] full-resolution ``images``
    of the frames ``p`` (in the views ``view_ok`` [B, C] says were read): what a face's colour differences are
    in proportion to (its albedo, the light, the exposure)."""
    verts = model.rig.evaluate(p.weights, p.R, p.t, identity=p.identity)
    seen = _sample_colours(model, verts, images)[_visible_samples(model, verts, view_ok)]
    return float(seen.median()) if seen.numel() else float("nan")


def initial_appearance(model: FitModel, p: FrameParams, obs: BatchObservations, visible: torch.Tensor) -> Appearance:
    """The appearance a take's first batch starts from: the mean observed colours as albedo, plain lighting."""
    verts = model.rig.evaluate(p.weights, p.R, p.t, identity=p.identity)
    observed = _sample_colours(model, verts, obs.images, obs.scale)
    return Appearance.neutral(initial_albedo(observed, visible), len(model.cams))


def _prior_points(model: FitModel, state: SequenceState, index: torch.Tensor,
                  loss: LossWeights) -> torch.Tensor | None:
    """[B, N, 3] the prior solution's sampled vertices for the frames ``index``, when the mesh prior is on."""
    prior = state.prior
    if prior is None or loss.mesh_prior <= 0:
        return None
    verts = model.rows.evaluate(prior.weights[index], prior.R[index], prior.t[index], identity=prior.identity)
    return verts[:, :model.samples.shape[0]]


@dataclass
class BatchFit:
    """What Gauss-Newton made of a batch.

    Attributes:
        params: the batch's fitted parameters (its frames' and the shared identity).
        appearance: the appearance after the last linearisation; damping: the Levenberg-Marquardt damping then.
        energies: the energy before the first iteration and after each.
        evidence: the batch's evidence on the appearance and identity, for the take's (:meth:`SequenceState.commit`).
    """

    params: FrameParams
    appearance: Appearance
    damping: float
    energies: list[float]
    evidence: BatchEvidence


@torch.no_grad()
def optimise_batch(model: FitModel, state: SequenceState, frames: np.ndarray, obs: BatchObservations,
                   loss: LossWeights, iterations: int, on: torch.Tensor | None = None) -> BatchFit:
    """Gauss-Newton on ``frames`` (take frame indices) from the state's parameters; the state is not changed.

    Consecutive frames get the temporal terms (their neighbours from the state), scattered ones (keyframes)
    do not. Visibility is fixed for the call (one image scale). ``on`` [B, K]: the weights the relaxed lasso
    frees from the sparsity prior where no off shape can stand in for them (None: the prior on all).
    """
    frames = np.asarray(frames)
    index = torch.as_tensor(frames, device=state.weights.device)
    start = int(frames[0]) if np.array_equal(frames, np.arange(frames[0], frames[0] + len(frames))) else None
    p = state.frame_params(index)
    visible = sample_visibility(model, p, obs.view_ok)
    appearance, rounds = state.appearance, 1
    if appearance is None:
        appearance, rounds = initial_appearance(model, p, obs, visible), FIRST_APPEARANCE_ROUNDS
    prior = _prior_points(model, state, index, loss)

    def linearised(params: FrameParams, appearance: Appearance, rounds: int = 1,
                   outline: Outline | None = None) -> Linearisation:
        return linearise(model, params, obs, visible, appearance, state.appearance_stats, loss, rounds, prior, outline)

    lin = linearised(p, appearance, rounds)
    freed = None if on is None else freed_from_prior(on, lin.JtJ, loss.relaxed_max_cosine)

    def system(params: FrameParams, lin: Linearisation) -> tuple[float, dict[str, float], torch.Tensor, torch.Tensor]:
        return _system(lin, state, params, start, loss, model.head_radius, freed)

    energy, terms, H, g = system(p, lin)
    history = [energy]
    damping = state.damping
    accepted = 0
    for _ in range(iterations):
        trial = apply_step(p, box_constrained_step(H, g, p, damping))
        trial_lin = linearised(trial, lin.appearance, outline=lin.outline)
        trial_energy, trial_terms, trial_H, trial_g = system(trial, trial_lin)
        if trial_energy < energy:
            p, lin, energy, terms, H, g = trial, trial_lin, trial_energy, trial_terms, trial_H, trial_g
            damping = max(damping / DAMPING_DOWN, DAMPING_MIN)
            accepted += 1
            if lin.outline is not None and accepted % OUTLINE_REFRESH == 0:
                lin = linearised(p, lin.appearance)
                energy, terms, H, g = system(p, lin)
        else:
            damping = min(damping * DAMPING_UP, DAMPING_MAX)
        history.append(energy)
    log.debug("frames %s: energy %s", frames.tolist(), {k: round(v, 6) for k, v in terms.items()})
    return BatchFit(p, lin.appearance, damping, history, batch_evidence(lin, p))


def batches(num_frames: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering the take."""
    return [(s, min(s + size, num_frames)) for s in range(0, num_frames, max(1, size))]
