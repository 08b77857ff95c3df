"""What a fit produced, and its JSON report."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.config import config_to_dict
from facecap.fit.config import FitConfig, LossWeights

__all__ = ["FitResult", "write_fit_report"]


@dataclass
class FitResult:
    """What a fit produced.

    Attributes:
        animation: per-frame weights (the rig's shape names) and head pose, in the calibration's units.
        identity: [I] identity coefficients of the performer; for a rig without identity modes, the
            coefficients of the smooth neutral correction (:mod:`facecap.fit.neutral`).
        frame_ok: [T] False where no view had landmarks, or none could be read, and the frame was interpolated.
        landmark_error_px: [T] RMS landmark reprojection error (confident points, all views).
        photometric_rms: [T] RMS colour error in grey levels over the visible samples (NaN without
            the photometric fit).
        qa_video: the QA video's path, or None.
        loss_history: stage name -> losses per iteration, summed over batches.
        seconds: wall time per phase.
        effective_loss: the loss weights the photometric stages used, the config's as scaled for the take
            (``l1`` by the face's pixels per millimetre, the photometric term by its brightness; detected
            landmarks at ``landmark_detected``); None without the photometric fit.
        damaged_views: the views that could not be read (missing or damaged frame files), each named with its
            camera, frame and file; they were left out of the fit.
        camera_names: the C cameras fitted; landmark_error_px_per_camera, photometric_rms_per_camera: [T, C]
            the errors per view (NaN where a view has none).
    """

    animation: Animation
    identity: np.ndarray
    frame_ok: np.ndarray
    landmark_error_px: np.ndarray
    photometric_rms: np.ndarray
    qa_video: Path | None = None
    loss_history: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    effective_loss: LossWeights | None = None
    damaged_views: list[str] = field(default_factory=list)
    camera_names: tuple[str, ...] = ()
    landmark_error_px_per_camera: np.ndarray | None = None
    photometric_rms_per_camera: np.ndarray | None = None


def _numbers(values: np.ndarray) -> list[float | None]:
    """A row of floats for JSON, null where NaN."""
    return [None if np.isnan(v) else float(v) for v in values]


def write_fit_report(result: FitResult, config: FitConfig, path: str | Path) -> None:
    """The JSON report (docs/formats.md): per-frame landmark and photometric errors (also per camera),
    interpolation flags, the views left out, timings, the config and the loss weights as the take scaled them."""
    T, C = result.animation.num_frames, len(result.camera_names)
    landmark_views = result.landmark_error_px_per_camera
    photometric_views = result.photometric_rms_per_camera
    frames = []
    for t, (f, e, p, ok) in enumerate(zip(result.animation.frame_numbers, result.landmark_error_px,
                                          result.photometric_rms, result.frame_ok)):
        row = {"frame": int(f), "landmark_error_px": float(e), "photometric_rms": _numbers([p])[0],
               "interpolated": not bool(ok)}
        if C and landmark_views is not None:
            row["landmark_error_px_per_camera"] = _numbers(landmark_views[t])
        if C and photometric_views is not None:
            row["photometric_rms_per_camera"] = _numbers(photometric_views[t])
        frames.append(row)
    report = {
        "cameras": list(result.camera_names),
        "frames": frames,
        "identity": result.identity.tolist(),
        "seconds": result.seconds,
        "frames_per_second": T / max(result.seconds.get("total", 1e-9), 1e-9),
        "config": config_to_dict(config),
        "effective_loss": None if result.effective_loss is None else config_to_dict(result.effective_loss),
        "damaged_views": result.damaged_views,
    }
    Path(path).write_text(json.dumps(report, indent=1))
