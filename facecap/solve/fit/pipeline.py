"""``fit_take``: a take, its calibration and a rig in; per-frame weights and head pose out."""

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from facecap.camera.model import Calibration, load_calibration
from facecap.camera.torch_camera import CameraTensors, project_points
from facecap.config import config_to_dict
from facecap.errors import ConfigError, FacecapError
from facecap.export.animation import Animation
from facecap.geometry.rotations import matrix_to_rotation_6d
from facecap.rig.evaluate import TorchRig, evaluate_rig
from facecap.rig.model import Rig
from facecap.solve.accuracy import face_region_vertices
from facecap.solve.fit.config import FitConfig
from facecap.solve.fit.init import Initialisation, initialise_from_landmarks
from facecap.solve.fit.optimize import (BatchObservations, FitModel, SequenceState, as_numpy_pose, batches,
                                        optimise_batch)
from facecap.take.landmarks import Landmarks2D, detect_landmarks, load_landmarks
from facecap.take.reader import Take, open_take

__all__ = ["FitResult", "fit_take", "resolve_device", "load_fit_landmarks"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a fit produced.

    Attributes:
        animation: per-frame weights (the rig's shape names) and head pose, in the calibration's units.
        identity: [I] identity coefficients of the performer (empty without identity modes).
        frame_ok: [T] False where no view had landmarks and the frame was interpolated.
        landmark_error_px: [T] RMS landmark reprojection error (confident points, all views).
        loss_history: stage name -> losses per iteration, summed over batches.
        seconds: wall time per phase.
    """

    animation: Animation
    identity: np.ndarray
    frame_ok: np.ndarray
    landmark_error_px: np.ndarray
    loss_history: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available; an unavailable CUDA device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device': {name} asked for, but torch sees no CUDA GPU (use device=cpu)")
    return device


def load_fit_landmarks(take: Take, config: FitConfig, out_dir: Path) -> Landmarks2D:
    """Landmarks from the user's file, else detected with MediaPipe (cached)."""
    source = config.landmarks
    if source.landmarks_file:
        return load_landmarks(source.landmarks_file).cameras(take.camera_names)
    if not source.model_path:
        raise ConfigError("config key 'landmarks.model_path': give MediaPipe's face_landmarker.task, or a "
                          "landmarks file with landmarks.landmarks_file")
    cache = Path(source.cache_dir) if source.cache_dir else out_dir / "landmarks_cache"
    return detect_landmarks(take, source.model_path, cache_dir=cache).cameras(take.camera_names)


def _read_frames(take: Take, frames: range) -> list[list[np.ndarray]]:
    """[B][C] frames [H, W, 3] float32, read once per batch (videos decode forward only)."""
    return [[take.frame(cam, i) for cam in take.camera_names] for i in frames]


def _observations(frames: list[list[np.ndarray]], span: range, landmarks: Landmarks2D, scale: float,
                  device: torch.device) -> BatchObservations:
    def resized(img: np.ndarray) -> np.ndarray:
        if scale != 1.0:
            h, w = img.shape[:2]
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    images = np.stack([np.stack([resized(img) for img in per_cam]) for per_cam in frames])
    sl = slice(span.start, span.stop)
    return BatchObservations(
        images=torch.as_tensor(images, device=device),
        points=torch.as_tensor(landmarks.points[sl], device=device, dtype=torch.float32),
        confidence=torch.as_tensor(landmarks.confidence[sl], device=device, dtype=torch.float32),
        scale=scale)


def _landmark_errors(rig: Rig, anim: Animation, identity: np.ndarray, landmarks: Landmarks2D,
                     calib: Calibration) -> np.ndarray:
    verts = evaluate_rig(rig, anim.weights, identity if rig.num_identities else None, anim.R, anim.t,
                         vertices=rig.landmark_vertices)
    px = project_points(torch.as_tensor(verts), CameraTensors.from_calibration(calib, dtype=torch.float64)).numpy()
    err2 = ((px - landmarks.points) ** 2).sum(-1)
    conf = landmarks.confidence > 0
    return np.sqrt((err2 * conf).sum((1, 2)) / np.maximum(conf.sum((1, 2)), 1))


def _state_from_init(init: Initialisation, device: torch.device) -> SequenceState:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=device)
    return SequenceState(weights=t(init.weights), rot6d=matrix_to_rotation_6d(t(init.R)), trans=t(init.t),
                         identity=t(init.identity))


def _photometric_fit(take: Take, model: FitModel, state: SequenceState, landmarks: Landmarks2D,
                     config: FitConfig, device: torch.device) -> dict[str, list[float]]:
    sched = config.schedule
    if len(sched.scales) != len(sched.iterations):
        raise ConfigError("config keys 'schedule.scales' and 'schedule.iterations' must have the same length")
    history: dict[str, list[float]] = {}
    spans = batches(take.num_frames, config.batch_frames)
    passes = [("batches", False)] + [(f"final{k}", True) for k in range(sched.final_iterations)]
    for name, temporal in passes:
        stages = list(zip(sched.scales, sched.iterations)) if not temporal else \
            [(sched.scales[-1], max(1, sched.iterations[-1] // 2))]
        for start, stop in tqdm(spans, desc=f"fit {name}", unit="batch", leave=False):
            frames = _read_frames(take, range(start, stop))
            for scale, iterations in stages:
                obs = _observations(frames, range(start, stop), landmarks, scale, device)
                losses = optimise_batch(model, state, start, obs, config, iterations, temporal=temporal)
                key = f"{name}@{scale:g}"
                merged = history.setdefault(key, [0.0] * len(losses))
                history[key] = [a + b for a, b in zip(merged, losses)]
    return history


def fit_take(take_path: str | Path, calibration: str | Path | Calibration, rig: Rig, config: FitConfig,
             out_dir: str | Path, tracking_rig: Rig | None = None) -> FitResult:
    """Fit a multi-view take: landmark initialisation, then analysis by synthesis.

    Args:
        take_path: the take folder (FORMATS.md §2).
        calibration: calibration.json path or a loaded Calibration.
        rig: the animation rig: its shape names and geometry define the exported weights.
        config: fit settings.
        out_dir: where caches go (the caller writes the exports).
        tracking_rig: a tuned rig (``facecap tune-rig``) to track with; same shape names as ``rig``.
    """
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    calib = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    tracking_rig = rig if tracking_rig is None else tracking_rig
    if tracking_rig.shape_names != rig.shape_names:
        raise FacecapError("the tracking rig's shape names differ from the animation rig's")
    device = resolve_device(config.device)
    with open_take(take_path, calib) as take:
        calib = take.calibration
        track = tracking_rig.in_units(calib.units)
        landmarks = load_fit_landmarks(take, config, out_dir)
        seconds["landmarks"] = time.perf_counter() - clock
        init = initialise_from_landmarks(landmarks, calib, track, config.init)
        seconds["init"] = time.perf_counter() - clock - seconds["landmarks"]
        state = _state_from_init(init, device)
        history: dict[str, list[float]] = {}
        if config.photometric:
            model = FitModel(rig=TorchRig.from_rig(track, device), faces=torch.as_tensor(track.faces, device=device).long(),
                             cams=CameraTensors.from_calibration(calib, device=device),
                             samples=torch.as_tensor(face_region_vertices(track), device=device),
                             landmarks=torch.as_tensor(track.landmark_vertices, device=device).long())
            history = _photometric_fit(take, model, state, landmarks, config, device)
        seconds["photometric"] = time.perf_counter() - clock - seconds["landmarks"] - seconds["init"]
        R, t = as_numpy_pose(state)
        anim = Animation(shape_names=rig.shape_names, weights=state.weights.double().cpu().numpy(), R=R, t=t,
                         fps=take.fps, units=calib.units, frames=np.arange(take.num_frames),
                         start_timecode=take.start_timecode)
        identity = state.identity.double().cpu().numpy()
        errors = _landmark_errors(track, anim, identity, landmarks, calib)
    seconds["total"] = time.perf_counter() - clock
    log.info("fit %d frames in %.1f s (%.2f frames/s), median landmark error %.2f px", anim.num_frames,
             seconds["total"], anim.num_frames / seconds["total"], float(np.median(errors)))
    return FitResult(animation=anim, identity=identity, frame_ok=init.frame_ok, landmark_error_px=errors,
                     loss_history=history, seconds=seconds)


def write_fit_report(result: FitResult, config: FitConfig, path: str | Path) -> None:
    """The JSON report: per-frame landmark error and interpolation flags, timings, config."""
    report = {
        "frames": [{"frame": int(f), "landmark_error_px": float(e), "interpolated": not bool(ok)}
                   for f, e, ok in zip(result.animation.frame_numbers, result.landmark_error_px, result.frame_ok)],
        "identity": result.identity.tolist(),
        "seconds": result.seconds,
        "frames_per_second": result.animation.num_frames / max(result.seconds.get("total", 1e-9), 1e-9),
        "config": config_to_dict(config),
    }
    Path(path).write_text(json.dumps(report, indent=1))
