"""Initialisation from landmarks: triangulate, rigid head pose, identity, CD weights.

Per frame: landmarks detected in several views are triangulated (robust to a missing or wrong
view), the rigid head pose comes from weighted Procrustes against the rig's landmarks, and the
coordinate-descent solver (Rackovic et al. 2024) finds the weights that explain the head-space
landmarks. Pose, identity and weights alternate a few times, because the pose estimate is
biased by the expression until the expression is known. The CD solver solves the whole sequence
jointly, its temporal term tying each frame's weights to its neighbours', so a frame whose
landmarks are noisy borrows from the frames around it. Frames where too few landmarks triangulate
are interpolated from their neighbours and flagged.
"""

import logging
from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from facecap.camera.model import Calibration
from facecap.camera.torch_camera import CameraTensors, project_points
from facecap.camera.triangulate import triangulate_points
from facecap.config import field, require_non_negative
from facecap.errors import FacecapError
from facecap.geometry.rotations import rigid_procrustes
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.solve.cd import CDConfig, DeltaBasis, solve_cd
from facecap.take.landmarks import Landmarks2D

__all__ = ["InitConfig", "Initialisation", "initialise_from_landmarks", "interpolate_missing_frames",
           "landmark_pixels"]

log = logging.getLogger(__name__)

# Multi-PIE 68 groups: the jaw contour (0-16) is a silhouette in images, not fixed skin points,
# so it triangulates inconsistently; the nose bridge and eye corners barely move with expression.
JAW = np.arange(0, 17)
STABLE = np.array([27, 28, 29, 30, 31, 35, 36, 39, 42, 45])
MIN_LANDMARKS_PER_FRAME = 8


@dataclass
class InitConfig:
    """Landmark initialisation settings."""

    alternations: int = field(4, "rounds of pose, identity and weight estimation")
    jaw_weight: float = field(0.1, "weight of the jaw-contour landmarks (0-16), which are silhouettes")
    lambda_l1: float = field(0.5, "CD sparsity weight λ1 (Rackovic's scaling: λ1/K per unit weight)")
    lambda_l1_identity: float = field(50.0, "λ1 while the identity is being estimated: strong, so that what stays "
                                            "constant over the take goes to the identity, not to held expressions")
    lambda_smooth: float = field(2.0, "CD temporal smoothness weight λ2 on squared second differences")
    identity_prior: float = field(1.0, "ridge weight keeping identity coefficients near 0 (σ = 1 modes)")
    fit_identity: bool = field(True, "estimate identity coefficients when the rig has identity_deltas")
    model: str | None = field(None, "a model of facecap train-init: the network starts each frame instead, its "
                                    "weights with its own head pose or the landmark start's, whichever lies closer "
                                    "to the triangulated landmarks (frames between keyframes restart from the "
                                    "landmarks when schedule.keyframes > 0, so use it with schedule.keyframes=0)")

    def __post_init__(self) -> None:
        require_non_negative(self, [f.name for f in fields(self) if f.name not in ("fit_identity", "model")])


@dataclass(frozen=True)
class Initialisation:
    """Per-frame starting point for the photometric fit, in the calibration's units.

    Attributes:
        weights: [T, K] in [0, 1]. R: [T, 3, 3], t: [T, 3] head-to-world pose.
        identity: [I] identity coefficients (empty when the rig has none).
        landmarks_3d: [T, L, 3] triangulated landmarks (NaN where invalid); valid: [T, L].
        frame_ok: [T] False where the frame had too few landmarks and was interpolated.
        residual_mm: [T] RMS distance of the fitted rig landmarks to the triangulated ones.
    """

    weights: np.ndarray
    R: np.ndarray
    t: np.ndarray
    identity: np.ndarray
    landmarks_3d: np.ndarray
    valid: np.ndarray
    frame_ok: np.ndarray
    residual_mm: np.ndarray


def _landmark_weights(valid: np.ndarray, jaw_weight: float) -> np.ndarray:
    w = valid.astype(np.float64)
    w[:, JAW] *= jaw_weight
    return w


def _fit_poses(model: np.ndarray, X: np.ndarray, weights: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame weighted Procrustes of the [T, L, 3] rig landmarks onto the triangulated [T, L, 3]."""
    T = len(X)
    R = np.tile(np.eye(3), (T, 1, 1))
    t = np.zeros((T, 3))
    for i in np.flatnonzero(ok):
        m = weights[i] > 0
        R[i], t[i], _ = rigid_procrustes(model[i, m], X[i, m], weights[i, m])
    return R, t


def _fit_identity(rig: Rig, lm: np.ndarray, residual: np.ndarray, weights: np.ndarray, prior: float) -> np.ndarray:
    """Ridge least squares of the identity coefficients shared by all frames.

    ``residual`` [T, L, 3] is what the identity must explain (head-space landmarks minus the
    expression model without identity).
    """
    basis = rig.identity_deltas[:, lm]  # [I, L, 3]
    w = np.sqrt(np.repeat(weights[..., None], 3, axis=-1))  # [T, L, 3]
    A = (w[None] * basis[:, None]).reshape(rig.num_identities, -1).T  # [T*L*3, I]
    b = (w * np.nan_to_num(residual)).ravel()
    scale = max(weights.sum(), 1.0) * prior * 1e-2
    return np.linalg.solve(A.T @ A + scale * np.eye(rig.num_identities), A.T @ b)


def landmark_pixels(rig: Rig, weights: np.ndarray, identity: np.ndarray, R: np.ndarray, t: np.ndarray,
                    calibration: Calibration) -> np.ndarray:
    """[T, C, L, 2] distorted pixels of the rig's landmark vertices posed by [T, K] weights, [I] identity,
    [T, 3, 3] R and [T, 3] t, in every camera."""
    verts = evaluate_rig(rig, weights, identity, R, t, vertices=rig.landmark_vertices)
    cams = CameraTensors.from_calibration(calibration, dtype=torch.float64)
    return project_points(torch.as_tensor(verts), cams).numpy()


def interpolate_missing_frames(ok: np.ndarray, weights: np.ndarray, R: np.ndarray,
                               t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill frames with ``ok`` False by interpolating their neighbours (slerp for rotations)."""
    if ok.all():
        return weights, R, t
    if not ok.any():
        raise FacecapError("no frame of the take has enough landmarks to fit; check the landmark detector")
    good = np.flatnonzero(ok)
    frames = np.arange(len(ok))
    weights = np.stack([np.interp(frames, good, weights[good, k]) for k in range(weights.shape[1])], axis=1)
    t = np.stack([np.interp(frames, good, t[good, d]) for d in range(3)], axis=1)
    clamped = np.clip(frames, good[0], good[-1])
    R = Slerp(good, Rotation.from_matrix(R[good]))(clamped).as_matrix() if len(good) > 1 \
        else np.repeat(R[good], len(ok), 0)
    return weights, R, t


def initialise_from_landmarks(landmarks: Landmarks2D, calibration: Calibration, rig: Rig,
                              config: InitConfig, identity: np.ndarray | None = None) -> Initialisation:
    """Pose, identity and weights for every frame from multi-view landmarks.

    Args:
        landmarks: detections of the take's cameras (same order as ``calibration``'s cameras).
        calibration: the cameras, in the units the result is wanted in.
        rig: the rig, already in the calibration's units, with multipie68 landmarks.
        identity: [I] known identity coefficients (kept), or None to estimate them.
    """
    if rig.landmark_vertices is None or len(rig.landmark_vertices) != landmarks.points.shape[2]:
        raise FacecapError(f"the rig's landmark embedding ({rig.landmark_scheme or 'none'}) does not match the "
                           f"detector's {landmarks.points.shape[2]} {landmarks.scheme} landmarks")
    X, valid, _ = triangulate_points(landmarks.points, landmarks.confidence, calibration)
    T, L = valid.shape
    frame_ok = valid.sum(axis=1) >= MIN_LANDMARKS_PER_FRAME
    lm = np.asarray(rig.landmark_vertices)
    lm_weights = _landmark_weights(valid & frame_ok[:, None], config.jaw_weight)
    basis = DeltaBasis.from_rig(rig, vertices=lm)
    W = np.zeros((T, rig.num_shapes))
    fit_identity = identity is None and config.fit_identity and rig.num_identities > 0
    identity = np.zeros(rig.num_identities) if identity is None else np.asarray(identity, dtype=np.float64)
    cd_config = CDConfig(lambda_l1=config.lambda_l1_identity if fit_identity else config.lambda_l1,
                         lambda_smooth=config.lambda_smooth)
    stable = np.zeros_like(lm_weights)
    stable[:, STABLE] = lm_weights[:, STABLE]
    for round_ in range(config.alternations):
        model = evaluate_rig(rig, W, identity, vertices=lm)
        R, t = _fit_poses(model, X, stable if round_ == 0 else lm_weights, frame_ok)
        head = np.einsum("tji,tlj->tli", R, np.nan_to_num(X) - t[:, None])  # R^T (X - t)
        expression = evaluate_rig(rig, W, vertices=lm)
        if fit_identity:
            identity = _fit_identity(rig, lm, head - expression, lm_weights, config.identity_prior)
        neutral = evaluate_rig(rig, np.zeros(rig.num_shapes), identity, vertices=lm)
        # Missing landmarks take the current model's value, so they add no residual (EM-style).
        target = np.where(lm_weights[..., None] > 0, head, model)
        W = solve_cd(basis, (target - neutral).reshape(T, -1), cd_config, warm_start=W).weights
    W, R, t = interpolate_missing_frames(frame_ok, W, R, t)
    model = evaluate_rig(rig, W, identity, R, t, vertices=lm)
    err = np.linalg.norm(model - np.nan_to_num(X), axis=-1)
    residual = np.sqrt((err ** 2 * lm_weights).sum(1) / np.maximum(lm_weights.sum(1), 1e-9))
    log.info("landmark init: %d/%d frames with landmarks, RMS landmark residual %.2f %s (median frame)",
             frame_ok.sum(), T, float(np.median(residual)), calibration.units)
    return Initialisation(weights=W, R=R, t=t, identity=identity, landmarks_3d=np.where(valid[..., None], X, np.nan),
                          valid=valid, frame_ok=frame_ok, residual_mm=residual)
