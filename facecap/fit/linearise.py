"""The data terms of the fit, linearised: energy and normal equations at the current parameters.

The colour Jacobian is the image gradient (a central difference of the bilinear sample) times
the projection Jacobian times the rig's; shading changes with the normals are left out of the
Jacobian (they are in the residual), which changes the step, not the fixed point. Each frame's
albedo is tied to the take's, and both are eliminated in closed form (variable projection), so a
geometry step sees the albedo follow it instead of fighting an albedo fitted to the old geometry.
The silhouette term pulls the mesh's outline points onto the head's outline in the image
(:mod:`facecap.fit.outline`, :mod:`facecap.take.silhouette`).
"""

from dataclasses import dataclass
from typing import Callable

import torch

from facecap.camera.torch_camera import project_points_with_jacobian, world_to_camera
from facecap.fit.appearance import (Appearance, AppearanceStats, PointZBuffer, sample_images, sample_points,
                                    solve_appearance)
from facecap.fit.config import LossWeights
from facecap.fit.outline import Outline, along_edges, outline
from facecap.fit.problem import BatchObservations, FitModel, FrameParams
from facecap.geometry.rotations import skew_matrix
from facecap.render.shading import sh_basis
from facecap.rig.evaluate import TorchRig, corrective_jacobian

__all__ = ["Linearisation", "linearise", "charbonnier", "eliminate_albedo", "corrective_slopes",
           "point_jacobian_columns"]

GRADIENT_STEP_PX = 0.5  # half-width of the central difference that gives the image gradient


@dataclass
class Linearisation:
    """Energy and Gauss-Newton system of the data terms at one point."""

    energy: float
    terms: dict[str, float]
    JtJ: torch.Tensor     # [B, P, P], P = K + 6 + I
    grad: torch.Tensor    # [B, P]
    albedo_coupling: torch.Tensor  # [B (K + 6) + I]^2: the shared albedo couples frames (eliminate_albedo)
    appearance: Appearance
    appearance_stats: AppearanceStats
    outline: Outline | None = None  # the outline points the silhouette term used (None: no silhouette term)


def _sample_with_gradient(sample: Callable[[torch.Tensor], torch.Tensor],
                          pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Values [..., N, K] of an image sampler at [..., N, 2] pixels, and their image gradient [..., N, K, 2].

    ``sample`` maps pixels [..., M, 2] to values [..., M, K] (:func:`sample_images`, :func:`sample_points`).
    """
    h = GRADIENT_STEP_PX
    offsets = pixels.new_tensor([[0, 0], [h, 0], [-h, 0], [0, h], [0, -h]])
    N = pixels.shape[-2]
    values = sample((pixels[..., None, :] + offsets).flatten(-3, -2)).unflatten(-2, (N, 5))   # [..., N, 5, K]
    gx = (values[..., 1, :] - values[..., 2, :]) / (2 * h)
    gy = (values[..., 3, :] - values[..., 4, :]) / (2 * h)
    return values[..., 0, :], torch.stack([gx, gy], -1)


def corrective_slopes(rows: TorchRig, weights: torch.Tensor) -> torch.Tensor | None:
    """d(corrective activations)/d(weights): [B, Cc, K], or None for a rig without correctives."""
    if not rows.corrective_deltas.shape[0]:
        return None
    return corrective_jacobian(weights, rows.corrective_keys)


def _world_head_jacobian(rows: TorchRig, index: torch.Tensor, dact: torch.Tensor | None,
                         R: torch.Tensor) -> torch.Tensor:
    """d(world position of rows[index])/d(weights): [B, M', 3, K], correctives included; ``R`` [B, 3, 3]."""
    D = rows.shape_deltas[:, index].permute(1, 2, 0)                         # [M', 3, K]
    if dact is None:
        return torch.einsum("bij,mjk->bmik", R, D)   # one GEMM, not B M' tiny products of a broadcast
    D = D + torch.einsum("bck,cmd->bmdk", dact, rows.corrective_deltas[:, index])
    return torch.einsum("bij,bmjk->bmik", R, D)


def charbonnier(r: torch.Tensor, eps: float) -> torch.Tensor:
    """Elementwise sqrt(r² + eps²) − eps: quadratic below ``eps`` (precise convergence), linear above
    (occlusions, specularities and detector blunders lose their pull)."""
    return torch.sqrt(r * r + eps * eps) - eps


def eliminate_albedo(h: torch.Tensor, tie: torch.Tensor, u: torch.Tensor,
                     held: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Schur complement of the albedos in the normal equations of the point moves.

    Per sample and channel, each frame's albedo α_f is tied to the take's albedo a, which the
    batch's frames share; locally the energy is
    ½ Σ_f [h_f α_f² + 2 α_f u_f·dX_f + tie_f (α_f − a)²] + ½ held a² + (terms in dX alone).
    Eliminating α and a leaves −Σ_f u_f u_f^T / D_f per frame (D = h + tie) and a rank-1 term
    −z z^T / den across the frames (Sherman-Morrison), without which a step could not slide the
    geometry under the texture that all the frames agree on.

    Args:
        h, tie: [B, N, 3] per frame, sample and channel; u: [B, N, 3, 3] (channel, point axis);
        held: [N, 3] evidence on the take's albedo from frames fitted before the batch.
    Returns:
        [B, N, 3, 3] the per-frame term, z [B, N, 3, 3] and den [N, 3].
    """
    D = (h + tie).clamp_min(1e-30)
    own = -torch.einsum("bnki,bnk,bnkj->bnij", u, 1 / D, u)
    den = (tie - tie * tie / D).sum(0) + held
    return own, (tie / D)[..., None] * u, den


def linearise(model: FitModel, p: FrameParams, obs: BatchObservations, visible: torch.Tensor, appearance: Appearance,
               committed: AppearanceStats | None, loss: LossWeights, appearance_rounds: int,
               prior_points: torch.Tensor | None = None, held_outline: Outline | None = None) -> Linearisation:
    """Appearance solve, then the energy and normal equations of the data terms at ``p``.

    ``prior_points`` [B, N, 3]: where ``loss.mesh_prior`` pulls the samples (None: no pull).
    ``held_outline``: outline points of an earlier linearisation, to compare energies on (None: found anew).
    """
    N = model.samples.shape[0]
    verts = model.rig.evaluate(p.weights, p.R, p.t, identity=p.identity)
    normals = model.sample_normals(verts)
    basis = sh_basis(normals)                                                # [B, N, 9]
    points = torch.cat([verts[:, model.samples], verts[:, model.landmarks]], 1)
    pixels, proj_jac = project_points_with_jacobian(points, model.cams)
    s = obs.scale
    observed, image_grad = _sample_with_gradient(lambda px: sample_images(obs.images, px),
                                                 pixels[:, :, :N] * s + (s - 1) / 2)

    # Per-frame means: each frame's photometric term is normalised by its visible samples.
    vis = visible.to(observed.dtype)[..., None].expand_as(observed)
    per_frame = loss.photometric / vis.sum((1, 2, 3)).clamp_min(1)[:, None, None, None]
    stats = None
    for _ in range(appearance_rounds):
        r = appearance.predict(basis) - observed
        robust = vis / torch.sqrt(r * r + loss.photometric_eps ** 2)
        appearance, stats = solve_appearance(appearance, committed, observed, robust * per_frame, basis)
    r = appearance.predict(basis) - observed
    omega = vis * per_frame / torch.sqrt(r * r + loss.photometric_eps ** 2)  # IRLS weights

    # Each frame's albedo, tied to the take's: eliminated in closed form (variable projection), so a
    # geometry step sees the albedo follow it instead of fighting an albedo fitted to the old geometry.
    shading = appearance.gains[None, :, None] * (basis @ appearance.sh)[:, None]   # [B, C, N, 3]
    target = observed - appearance.bias[None, :, None]
    h = (omega * shading * shading).sum(1)                                     # [B, N, 3]
    tie = loss.albedo_tie * h / visible.sum(1).clamp_min(1)[..., None]
    albedo = ((omega * shading * target).sum(1) + tie * appearance.albedo) / (h + tie).clamp_min(1e-30)
    r = shading * albedo[:, None] - target
    photo_energy = (charbonnier(r, loss.photometric_eps) * vis * per_frame).sum() + \
        (tie * (albedo - appearance.albedo) ** 2).sum() / 2
    omega = vis * per_frame / torch.sqrt(r * r + loss.photometric_eps ** 2)
    h = (omega * shading * shading).sum(1)                                   # with the new weights: H stays PSD
    G = image_grad @ (s * proj_jac[:, :, :N])                               # [B, C, N, 3, 3] d colour / d X
    u = torch.einsum("bcnk,bcnki->bnki", omega * shading, G)                 # albedo-geometry coupling
    held = committed.albedo_den if committed is not None else torch.zeros_like(h[0])
    own, z, den = eliminate_albedo(h, tie, u, held)
    H_points = ((G * omega[..., None]).transpose(-1, -2) @ G).sum(1) + own
    g_points = -torch.einsum("bcnk,bcnki->bni", omega * r, G)

    terms = {}
    if prior_points is not None and loss.mesh_prior > 0:
        offset = points[:, :N] - prior_points
        terms["mesh_prior"] = float(loss.mesh_prior / N * (offset * offset).sum())
        H_points = H_points + 2 * loss.mesh_prior / N * torch.eye(3, dtype=offset.dtype, device=offset.device)
        g_points = g_points + 2 * loss.mesh_prior / N * offset

    H_outline = outline_points = None
    if obs.silhouette is not None and loss.silhouette > 0:
        terms["silhouette"], H_outline, g_outline, outline_points = _silhouette_terms(
            model, verts, normals, pixels[:, :, :N], proj_jac, obs, loss, held_outline)
        g_points = g_points + g_outline

    lm_error = pixels[:, :, N:] - obs.points                                # [B, C, L, 2]
    dist = lm_error.norm(dim=-1)
    conf = obs.confidence * (loss.landmark / obs.confidence.sum((1, 2)).clamp_min(1e-9))[:, None, None]
    lm_energy = (charbonnier(dist, loss.landmark_eps_px) * conf).sum()
    lm_omega = conf / torch.sqrt(dist * dist + loss.landmark_eps_px ** 2)
    J_lm = proj_jac[:, :, N:]
    H_points = torch.cat([H_points, torch.einsum("bcl,bclki,bclkj->blij", lm_omega, J_lm, J_lm)], 1)
    g_points = torch.cat([g_points, torch.einsum("bcl,bclk,bclki->bli", lm_omega, lm_error, J_lm)], 1)

    JtJ, grad, coupling = _normal_equations(model, p, points, H_points, g_points, z, den, H_outline)
    terms.update(photometric=float(photo_energy), landmark=float(lm_energy))
    return Linearisation(sum(terms.values()), terms, JtJ, grad, coupling, appearance, stats, outline_points)


def _silhouette_terms(model: FitModel, verts: torch.Tensor, normals: torch.Tensor, pixels: torch.Tensor,
                      proj_jac: torch.Tensor, obs: BatchObservations, loss: LossWeights,
                      held: Outline | None) -> tuple[float, torch.Tensor, torch.Tensor, Outline]:
    """Energy and per-sample normal equations [B, N, 3, 3], [B, N, 3] of the outline points' signed
    distances to the image's outline (Cauchy, mean over each frame's outline points), and the
    outline points (``held``, or found anew when None). ``pixels`` [B, C, N, 2]: the samples' projections.

    An outline point is a point of an edge; its normal equations go to the edge's nearer end,
    which moves with it to first order. The contour slides along the surface as the head turns,
    but to first order its motion across the outline is the surface's, so the points are found
    again only now and then (``optimize.OUTLINE_REFRESH``). The Cauchy loss redescends: where the
    image's outline is wrong (dark hair lost to a dark backdrop) the points lie far from it and lose
    their pull; its scale widens at coarse image scales, where the fit starts far off.
    """
    B, N = normals.shape[:2]
    if held is None:
        X_cam = world_to_camera(verts[:, model.samples], model.cams)
        points = outline(pixels, X_cam, normals, model.sample_edges, model.cams, PointZBuffer(verts, model.cams))
        points = points.subset(obs.silhouette_found[points.frame, points.camera])
    else:
        points = outline(pixels, None, normals, model.sample_edges, model.cams, None, held)
    b, c = points.frame, points.camera
    distance, distance_grad = _sample_with_gradient(
        lambda px: sample_points(obs.silhouette, b, c, px), points.pixels[:, None])     # [n, 1, 1], [n, 1, 1, 2]
    r = distance[:, 0, 0]
    point_jac = along_edges(proj_jac, b, c, model.sample_edges[points.edge], points.fraction)
    J = (distance_grad[:, 0] @ point_jac)[:, 0]                                      # [n, 3] d r / d X
    per_frame = loss.silhouette / torch.bincount(b, minlength=B).clamp_min(1).to(r.dtype)
    sigma = loss.silhouette_eps_px / obs.scale
    energy = float((0.5 * sigma ** 2 * torch.log1p((r / sigma) ** 2) * per_frame[b]).sum())
    omega = per_frame[b] / (1 + (r / sigma) ** 2)
    row = b * N + points.nearest
    H = J.new_zeros(B * N, 3, 3).index_add_(0, row, omega[:, None, None] * J[:, :, None] * J[:, None])
    g = J.new_zeros(B * N, 3).index_add_(0, row, (omega * r)[:, None] * J)
    return energy, H.view(B, N, 3, 3), g.view(B, N, 3), points


def _normal_equations(model: FitModel, p: FrameParams, points: torch.Tensor, H_points: torch.Tensor,
                      g_points: torch.Tensor, z: torch.Tensor, den: torch.Tensor,
                      H_sparse: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame J^T W J [B, P, P] and J^T W r [B, P] from per-point 3x3 blocks and 3-vectors, and the
    frame coupling of the shared albedo, sum over points and channels of v v^T / den with
    v = J^T z [B P' + I] (``z`` [B, N, 3 channels, 3], ``den`` [N, 3]).

    The parameters are (weights, rotation increment, translation, identity); a point moves by
    d X = R dV/dw dw - [X - t]x drot + dt + R dV/did did. The gradient uses every point; the
    normal matrix uses the subset ``model.hessian_rows`` (every point is ~17k rows on ICT, and
    the matrix costs rows x P^2), scaled to stand for all: the step stays a descent direction
    and the fixed point is the exact one. ``H_sparse`` [B, N, 3, 3] (the outline's, on a few hundred
    samples) is not dense enough for a subset to stand for it: it enters on exactly its own rows.
    """
    rows = model.rows
    R = p.R
    dact = corrective_slopes(rows, p.weights)
    g_head = (g_points @ R).flatten(1)                                      # rows of R^T g, [B, 3M]
    grad_w = g_head @ rows.shape_deltas.flatten(1).T
    if dact is not None:
        grad_w = grad_w + ((g_head @ rows.corrective_deltas.flatten(1).T)[:, None] @ dact)[:, 0]
    grad = [grad_w, torch.linalg.cross(points - p.t[:, None], g_points, dim=-1).sum(1), g_points.sum(1)]
    if p.identity.numel():
        grad.append(g_head @ rows.identity_deltas.flatten(1).T)

    sub = model.hessian_rows
    A = point_jacobian_columns(rows, sub, dact, p, points[:, sub])        # [B, M', 3, P]
    HA = (H_points[:, sub] * model.hessian_scale[:, None, None]) @ A
    JtJ = A.flatten(1, 2).transpose(1, 2) @ HA.flatten(1, 2)
    if H_sparse is not None:
        held = torch.nonzero(H_sparse.abs().sum((0, 2, 3)) > 0)[:, 0]
        A_sparse = point_jacobian_columns(rows, held, dact, p, points[:, held])
        JtJ = JtJ + A_sparse.flatten(1, 2).transpose(1, 2) @ (H_sparse[:, held] @ A_sparse).flatten(1, 2)

    sampled = model.hessian_samples
    rows_s = sub[:sampled]
    v = torch.matmul(z[:, rows_s], A[:, :sampled]).permute(1, 2, 0, 3)                   # [M', 3, B, P]
    weight = model.hessian_scale[:sampled, None] / den[rows_s].clamp_min(1e-30)              # [M', 3]
    v = v * weight.sqrt()[..., None, None]
    Pf = A.shape[-1] - p.identity.numel()
    V = torch.cat([v[..., :Pf].flatten(2), v[..., Pf:].sum(2)], -1).flatten(0, 1)
    return JtJ, torch.cat(grad, -1), V.T @ V


def point_jacobian_columns(rows: TorchRig, index: torch.Tensor, dact: torch.Tensor | None, p: FrameParams,
                            X: torch.Tensor) -> torch.Tensor:
    """d(world position)/d(parameters) [B, M', 3, P] of the points ``rows[index]``, at world positions X [B, M', 3]."""
    B = X.shape[0]
    columns = [_world_head_jacobian(rows, index, dact, p.R), -skew_matrix(X - p.t[:, None]),
               torch.eye(3, dtype=X.dtype, device=X.device).expand(B, len(index), 3, 3)]
    if p.identity.numel():
        columns.append(torch.einsum("bij,kmj->bmik", p.R, rows.identity_deltas[:, index]))
    return torch.cat(columns, -1)
