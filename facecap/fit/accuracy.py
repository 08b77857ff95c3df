"""Accuracy of a fitted animation against a synthetic take's ground truth.

- Weight MAE over all entries, and over the active entries (truth or fit above 0.05).
- Per-vertex error on the face region: the TRUE neutral (rig neutral plus the performer's
  identity) posed once by the fitted weights and head pose and once by the true ones, so
  that identity estimation errors do not hide expression or pose errors.
- Head rotation error (degrees, geodesic) and translation error (animation units).
- Per shape, where the weight error comes from (:func:`weight_errors_by_shape`).
"""

from dataclasses import asdict, dataclass

import numpy as np

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.units import unit_scale

__all__ = ["AccuracyReport", "ShapeWeightError", "animation_accuracy", "weight_errors_by_shape", "face_region_vertices",
           "weights_in_rig_order", "true_identity", "ACTIVE_THRESHOLD"]

ACTIVE_THRESHOLD = 0.05  # a weight counts as active above this, in truth or fit


@dataclass(frozen=True)
class AccuracyReport:
    """Fit-versus-truth figures; lengths in millimetres, angles in degrees."""

    frames: int
    weight_mae_all: float
    weight_mae_active: float
    vertex_error_mean_mm: float
    vertex_error_p95_mm: float
    rotation_error_deg: float
    rotation_error_max_deg: float
    translation_error_mm: float
    translation_error_max_mm: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def summary(self) -> str:
        return (f"weights MAE {self.weight_mae_all:.4f} (active {self.weight_mae_active:.4f}), "
                f"vertex error {self.vertex_error_mean_mm:.3f} mm mean / {self.vertex_error_p95_mm:.3f} mm p95, "
                f"head rotation {self.rotation_error_deg:.3f} deg, translation {self.translation_error_mm:.3f} mm")


def face_region_vertices(rig: Rig) -> np.ndarray:
    """[N] vertices of the face: those of the rig's "M_Face" triangles, else all opaque ones
    (:meth:`Rig.face_region_faces`)."""
    return np.unique(rig.faces[rig.face_region_faces()])


def weights_in_rig_order(anim: Animation, rig: Rig, frames: int) -> np.ndarray:
    """[T, K_rig] weights of ``anim`` in the rig's shape order (shapes it lacks are 0)."""
    unknown = [n for n in anim.shape_names if n not in rig.shape_names]
    if unknown:
        raise FormatError(f"animation shapes not in the rig: {', '.join(unknown[:5])}")
    if anim.num_frames != frames:
        raise FormatError(f"the fit and the ground truth differ in length: {anim.num_frames} vs {frames} frames")
    out = np.zeros((frames, rig.num_shapes))
    out[:, [rig.shape_index(n) for n in anim.shape_names]] = anim.weights
    return out


def true_identity(truth: Animation, rig: Rig) -> np.ndarray:
    """[I] the performer's identity coefficients that a ground-truth take's generator records; the rig's
    neutral (zeros) when it records none."""
    recorded = truth.extra.get("generator", {}).get("identity_coefficients")
    return np.zeros(rig.num_identities) if recorded is None else np.asarray(recorded, dtype=np.float64)


def animation_accuracy(rig: Rig, fit: Animation, truth: Animation, identity: np.ndarray | None = None,
                       vertices: np.ndarray | None = None) -> AccuracyReport:
    """Compare ``fit`` with ``truth`` on ``rig``; weights are matched by shape name.

    Args:
        rig: the rig both animations drive; converted to millimetres here.
        fit, truth: animations of the same frames.
        identity: [I] the performer's true identity coefficients, or None for the rig's neutral.
        vertices: [N] vertices to measure, default :func:`face_region_vertices`.
    """
    w_true = weights_in_rig_order(truth, rig, truth.num_frames)
    w_fit = weights_in_rig_order(fit, rig, truth.num_frames)
    rig_mm = rig.in_units("mm")
    active = (w_true > ACTIVE_THRESHOLD) | (w_fit > ACTIVE_THRESHOLD)
    err = np.abs(w_fit - w_true)
    vertices = face_region_vertices(rig) if vertices is None else vertices
    s_fit, s_truth = unit_scale(fit.units, "mm"), unit_scale(truth.units, "mm")
    ident = None if identity is None else np.asarray(identity, dtype=np.float64)
    v_fit = evaluate_rig(rig_mm, w_fit, ident, fit.R, fit.t * s_fit, vertices=vertices)
    v_true = evaluate_rig(rig_mm, w_true, ident, truth.R, truth.t * s_truth, vertices=vertices)
    dist = np.linalg.norm(v_fit - v_true, axis=-1)
    cos = (np.einsum("tij,tij->t", fit.R, truth.R) - 1) / 2
    rot = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    trans = np.linalg.norm(fit.t * s_fit - truth.t * s_truth, axis=-1)
    return AccuracyReport(
        frames=truth.num_frames, weight_mae_all=float(err.mean()),
        weight_mae_active=float(err[active].mean()) if active.any() else 0.0,
        vertex_error_mean_mm=float(dist.mean()), vertex_error_p95_mm=float(np.percentile(dist, 95)),
        rotation_error_deg=float(rot.mean()), rotation_error_max_deg=float(rot.max()),
        translation_error_mm=float(trans.mean()), translation_error_max_mm=float(trans.max()))


@dataclass(frozen=True)
class ShapeWeightError:
    """How one shape's fitted weights miss the truth over a take.

    Attributes:
        name: the shape. mae: mean absolute weight error over the frames. bias: mean signed error (a fit
            that holds the shape low or high, rather than one that is noisy). share: the shape's part of the
            all-entries weight MAE, in [0, 1].
    """

    name: str
    mae: float
    bias: float
    share: float


def weight_errors_by_shape(rig: Rig, fit: Animation, truth: Animation) -> list[ShapeWeightError]:
    """Every shape's weight error, largest first: the shapes that miss tell which evidence a take lacks."""
    error = weights_in_rig_order(fit, rig, truth.num_frames) - weights_in_rig_order(truth, rig, truth.num_frames)
    mae = np.abs(error).mean(0)
    total = mae.sum()
    return [ShapeWeightError(rig.shape_names[k], float(mae[k]), float(error[:, k].mean()),
                             float(mae[k] / total) if total > 0 else 0.0) for k in np.argsort(-mae, kind="stable")]
