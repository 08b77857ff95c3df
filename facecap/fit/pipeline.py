"""``fit_take``: a take, its calibration and a rig in; per-frame weights and head pose out."""

import itertools
import json
import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facecap.animation import Animation
from facecap.camera.model import Calibration, load_calibration
from facecap.camera.torch_camera import CameraTensors, project_points
from facecap.config import config_to_dict
from facecap.errors import ConfigError, FacecapError
from facecap.fit.appearance import photometric_samples
from facecap.fit.config import REFERENCE_BRIGHTNESS, FitConfig, LossWeights
from facecap.fit.feed import FrameBatch, default_threads, feed_batches
from facecap.fit.init import Initialisation, initialise_from_landmarks, interpolate_missing_frames
from facecap.fit.neutral import with_neutral_correction
from facecap.fit.optimize import batches, face_brightness, optimise_batch
from facecap.fit.problem import FitModel, FrameParams, SequenceState
from facecap.fit.qa import QAVideo, check_frames
from facecap.render.ops import make_context
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D, detect_landmarks, load_landmarks
from facecap.take.reader import Take, open_take
from facecap.units import unit_scale

__all__ = ["FitResult", "fit_take", "write_fit_report", "resolve_device", "load_fit_landmarks", "tracked_rig",
           "resolution_scaled", "brightness_scaled"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a fit produced.

    Attributes:
        animation: per-frame weights (the rig's shape names) and head pose, in the calibration's units.
        identity: [I] identity coefficients of the performer; for a rig without identity modes, the
            coefficients of the smooth neutral correction (:mod:`facecap.fit.neutral`).
        frame_ok: [T] False where no view had landmarks and the frame was interpolated.
        landmark_error_px: [T] RMS landmark reprojection error (confident points, all views).
        photometric_rms: [T] RMS colour error in grey levels over the visible samples (NaN without
            the photometric fit).
        qa_video: the QA video's path, or None.
        loss_history: stage name -> losses per iteration, summed over batches.
        seconds: wall time per phase.
        effective_loss: the loss weights the photometric stages used, the config's as scaled for the take
            (``l1`` by the face's pixels per millimetre, the photometric term by its brightness; detected
            landmarks at ``landmark_detected``); None without the photometric fit.
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
    if not source.detected:
        landmarks = load_landmarks(source.landmarks_file).cameras(take.camera_names)
        return landmarks.for_take(take.num_frames, source.landmarks_file)
    if not source.model_path:
        raise ConfigError("config key 'landmarks.model_path': give MediaPipe's face_landmarker.task, or a "
                          "landmarks file with landmarks.landmarks_file")
    cache = Path(source.cache_dir) if source.cache_dir else out_dir / "landmarks_cache"
    return detect_landmarks(take, source.model_path, cache_dir=cache).cameras(take.camera_names)


def _landmark_pixels(rig: Rig, weights: np.ndarray, identity: np.ndarray, R: np.ndarray, t: np.ndarray,
                     calib: Calibration) -> np.ndarray:
    """[T, C, L, 2] distorted pixels of the rig's landmark vertices posed per frame."""
    verts = evaluate_rig(rig, weights, identity, R, t, vertices=rig.landmark_vertices)
    return project_points(torch.as_tensor(verts), CameraTensors.from_calibration(calib, dtype=torch.float64)).numpy()


def _landmark_errors(rig: Rig, anim: Animation, identity: np.ndarray, landmarks: Landmarks2D,
                     calib: Calibration) -> np.ndarray:
    px = _landmark_pixels(rig, anim.weights, identity, anim.R, anim.t, calib)
    err2 = ((px - landmarks.points) ** 2).sum(-1)
    conf = landmarks.confidence > 0
    return np.sqrt((err2 * conf).sum((1, 2)) / np.maximum(conf.sum((1, 2)), 1))


def _nearest_rotations(R: np.ndarray) -> np.ndarray:
    """Project [T, 3, 3] float32-accumulated rotations back onto SO(3)."""
    U, _, Vt = np.linalg.svd(R)
    return U @ Vt


def _init_params(init: Initialisation, device: torch.device) -> FrameParams:
    """Every frame's landmark-init parameters as float32 tensors on ``device``."""
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=device)
    return FrameParams(t(init.weights), t(init.R), t(init.t), t(init.identity))


def _state_from_init(init: Initialisation, config: FitConfig, device: torch.device) -> SequenceState:
    prior = _init_params(init, device)
    return SequenceState(weights=prior.weights.clone(), R=prior.R.clone(), t=prior.t.clone(),
                         identity=prior.identity.clone(), damping=config.schedule.damping, prior=prior)


def _fit_frames(model: FitModel, state: SequenceState, landmarks: Landmarks2D, batch: FrameBatch,
                stages: list[tuple[float, int]], config: FitConfig, history: dict[str, list[float]], name: str,
                bar: tqdm | None = None, relaxed: bool = False) -> None:
    """Coarse-to-fine Gauss-Newton on ``batch``; the last stage commits its evidence to the take.

    With ``relaxed``, the weights on when the batch's fit begins (``loss.l1_relaxed_above``) are the relaxed
    lasso's support for all its stages.
    """
    on = None
    if relaxed and config.loss.l1_relaxed_above > 0:
        on = state.weights[torch.as_tensor(batch.frames, device=state.weights.device)] >= config.loss.l1_relaxed_above
    for k, (scale, iterations) in enumerate(stages):
        energies = optimise_batch(model, state, batch.frames, batch.observations(landmarks, scale), config,
                                  iterations, commit=k == len(stages) - 1, on=on)
        key = f"{name}@{scale:g}"
        merged = history.setdefault(key, [0.0] * len(energies))
        history[key] = [a + b for a, b in zip(merged, energies)]
        if bar is not None:
            bar.update(1)


class _TakeCheck:
    """Per-frame photometric error at full resolution, and the QA video when asked for, batch by batch."""

    def __init__(self, take: Take, config: FitConfig, device: torch.device, out_dir: Path) -> None:
        self.errors = np.full(take.num_frames, np.nan)
        self.path = out_dir / "qa.mp4" if config.qa_video else None
        self._ctx = make_context("auto", device) if self.path else None
        self._video = QAVideo(self.path, take.fps or 30.0) if self.path else None
        self._scale = config.qa_scale

    def add(self, model: FitModel, state: SequenceState, batch: FrameBatch) -> None:
        result = check_frames(model, state, batch.frames, batch.images, self._ctx, self._scale)
        self.errors[batch.frames] = result.photometric_rms
        if self._video is not None:
            self._video.write(result.panels)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()


def _photometric_fit(take: Take, model: FitModel, state: SequenceState, landmarks: Landmarks2D, calib: Calibration,
                     rig: Rig, config: FitConfig, device: torch.device,
                     check: _TakeCheck) -> tuple[dict[str, list[float]], LossWeights]:
    """Keyframes first (identity, appearance), a landmark re-init with that identity (for detections,
    corrected by the keyframes' fits), then the sweeps. Detected landmarks weigh ``loss.landmark_detected``
    in every stage, a landmarks file's ``loss.landmark``; ``loss.l1`` is scaled by the face's pixels per
    millimetre (:func:`resolution_scaled`), the photometric term by its brightness in the first batch read
    (:func:`brightness_scaled`). Returns the loss history and the loss weights so scaled.

    The frames come from :func:`feed_batches`, which reads each batch while the one before is fitted.
    Each batch of the last sweep is final when it is done: ``check`` sees it then, with the frames
    already read (a take is decoded once per sweep, not once more for the check).
    """
    sched = config.schedule
    history: dict[str, list[float]] = {}
    T = take.num_frames
    detected = config.landmarks.detected
    config = resolution_scaled(config, model, state, calib.units)
    if detected:
        config = replace(config, loss=replace(config.loss, landmark=config.loss.landmark_detected))
    keyframes = np.unique(np.linspace(0, T - 1, min(sched.keyframes, T)).round().astype(int))
    spans = [np.arange(start, stop) for start, stop in batches(T, config.batch_frames)]
    plan = ([keyframes] if sched.keyframes > 0 else []) + spans * max(sched.passes, 1)
    threads = config.reader_threads or default_threads()
    reader = feed_batches(take, plan, device, silhouettes=config.loss.silhouette > 0, threads=threads)
    try:
        first = next(reader)
        first_params = state.frame_params(torch.as_tensor(first.frames, device=state.weights.device))
        config = brightness_scaled(config, face_brightness(model, first_params, first.images))
        feed = itertools.chain([first], reader)
        if sched.keyframes > 0:
            with tqdm(total=len(sched.keyframe_stages), desc=f"fit {len(keyframes)} keyframes", unit="scale",
                      leave=False) as bar:
                _fit_frames(model, state, landmarks, next(feed), sched.keyframe_stages, config, history, "keyframes",
                            bar)
            if detected:
                landmarks = _without_detector_offsets(landmarks, state, keyframes, calib, rig)
            if detected or state.identity.numel():
                _reinitialise(state, landmarks, calib, rig, config, keyframes, keyframe_corrections=detected)
        for sweep in range(sched.passes):
            for _ in tqdm(spans, desc=f"fit pass {sweep + 1}/{sched.passes}", unit="batch", leave=False):
                batch = next(feed)
                _fit_frames(model, state, landmarks, batch, sched.sweep_stages, config, history, f"pass{sweep + 1}",
                            relaxed=True)
                if sweep == sched.passes - 1:
                    check.add(model, state, batch)
        if sched.passes == 0:
            for batch in tqdm(feed, total=len(spans), desc="check", unit="batch", leave=False):
                check.add(model, state, batch)
    finally:
        reader.close()
    return history, config.loss


def tracked_rig(rig: Rig, units: str, config: FitConfig) -> tuple[Rig, np.ndarray]:
    """The rig as the fit tracks with it, in ``units`` (with a smooth neutral correction where it has
    no identity modes), and its photometric samples [N]."""
    samples = photometric_samples(rig, config.exclude_materials)
    return with_neutral_correction(rig.in_units(units), samples, config.neutral_degree), samples


def resolution_scaled(config: FitConfig, model: FitModel, state: SequenceState, units: str) -> FitConfig:
    """``config`` with ``loss.l1`` times the pixels per millimetre at the initialised heads.

    A shape's photometric evidence comes mostly from the edges it moves (lids, lips): a sharp edge
    changes colour by a step per pixel it moves, so the evidence for a millimetre grows with the
    pixels per millimetre, and so must the prior it is weighed against. Measured on the dev takes
    (1.6 and 2.2 px/mm) and the demo (0.63 px/mm): the best fixed l1 scales about linearly.
    """
    px_per_mm = model.pixels_per_unit(state.R, state.t) / unit_scale(units, "mm")
    l1 = config.loss.l1 * px_per_mm
    log.info("the face is imaged at %.2f px/mm: l1 sparsity %.4f", px_per_mm, l1)
    return replace(config, loss=replace(config.loss, l1=l1))


def brightness_scaled(config: FitConfig, brightness: float) -> FitConfig:
    """``config`` with the photometric term measured relative to a face of median colour ``brightness``.

    Colour differences are in proportion to the face's colours: a face half as bright (darker skin, less
    light, a shorter exposure) shows every edge and texture at half the contrast. Charbonnier's scale
    times ``b`` = brightness / REFERENCE_BRIGHTNESS and the weight over ``b`` make the term the same on
    such a take, so that it keeps its balance with the pixel-based terms and the sparsity prior (dev_ict_4cam
    with its frames at half brightness fitted to weight MAE 0.019 without this, and with it to its figures at
    full brightness, 0.0117).
    """
    if not np.isfinite(brightness) or brightness <= 0:
        log.warning("no face colours seen at the initial head poses: the photometric term is left as configured")
        return config
    b = brightness / REFERENCE_BRIGHTNESS
    log.info("the face's median colour is %.2f: photometric weight %.3g, Charbonnier scale %.3g", brightness,
             config.loss.photometric / b, config.loss.photometric_eps * b)
    return replace(config, loss=replace(config.loss, photometric=config.loss.photometric / b,
                                        photometric_eps=config.loss.photometric_eps * b))


def _without_detector_offsets(landmarks: Landmarks2D, state: SequenceState, keyframes: np.ndarray,
                              calib: Calibration, rig: Rig) -> Landmarks2D:
    """The detections less each camera's median offset from the fitted keyframes' landmarks.

    A detector's points are not exactly the rig's landmark vertices: MediaPipe's brows, nose and
    jaw sit millimetres away, and by how much depends on the face and the view. The keyframes are
    fitted photometrically without them; their offsets from those fits, per camera and landmark,
    are then known and removed, so that the landmarks agree with the photometry on every frame.
    """
    index = torch.as_tensor(keyframes, device=state.weights.device)
    px = _landmark_pixels(rig, *(a.double().cpu().numpy() for a in (state.weights[index], state.identity,
                                                                    state.R[index], state.t[index])), calib)
    seen = landmarks.confidence[keyframes] > 0
    offsets = np.where(seen[..., None], landmarks.points[keyframes] - px, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                   # all-NaN: a landmark never seen
        median = np.nan_to_num(np.nanmedian(offsets, axis=0))              # [C, L, 2]; 0 where never seen
    log.info("detector offsets from the fitted keyframes: median %.1f px, 90th percentile %.1f px",
             *np.percentile(np.linalg.norm(median, axis=-1)[seen.any(0)], [50, 90]))
    return replace(landmarks, points=landmarks.points - median)


def _reinitialise(state: SequenceState, landmarks: Landmarks2D, calib: Calibration, rig: Rig, config: FitConfig,
                  keyframes: np.ndarray, keyframe_corrections: bool) -> None:
    """Landmark init of the frames between the keyframes again, now with the photometric identity.

    The landmark init cannot tell identity from expression; with the identity known its weights and
    poses are far better starting points for the sweeps. With ``keyframe_corrections`` each frame
    also takes on the correction (weights, rotation, translation) that the photometric fit made to
    the landmark init at the keyframes around it, interpolated: what is left of a detector's error
    is its bias for a pose and expression, which changes slowly over the take. Noise that changes
    from frame to frame (a landmarks file's) it would add to, not remove.
    """
    init = initialise_from_landmarks(landmarks, calib, rig, config.init, identity=state.identity.double().cpu().numpy())
    state.prior = _init_params(init, state.weights.device)
    weights, R, t = _keyframe_corrected(init, state, keyframes) if keyframe_corrections else \
        (init.weights, init.R, init.t)
    redo = torch.as_tensor(np.setdiff1d(np.arange(len(init.weights)), keyframes), device=state.weights.device)

    def between(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=state.weights.dtype, device=redo.device)[redo]
    state.weights[redo], state.R[redo], state.t[redo] = between(weights), between(R), between(t)


def _keyframe_corrected(init: Initialisation, fitted: SequenceState,
                        keyframes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[T, K], [T, 3, 3], [T, 3]: ``init`` with the fit's corrections at ``keyframes`` interpolated to every frame."""
    def at_keys(a: torch.Tensor) -> np.ndarray:
        return a[torch.as_tensor(keyframes, device=a.device)].double().cpu().numpy()
    T = len(init.weights)
    dW, dR, dt = np.zeros_like(init.weights), np.tile(np.eye(3), (T, 1, 1)), np.zeros_like(init.t)
    dW[keyframes] = at_keys(fitted.weights) - init.weights[keyframes]
    dR[keyframes] = at_keys(fitted.R) @ init.R[keyframes].transpose(0, 2, 1)
    dt[keyframes] = at_keys(fitted.t) - np.einsum("kij,kj->ki", dR[keyframes], init.t[keyframes])
    dW, dR, dt = interpolate_missing_frames(np.isin(np.arange(T), keyframes), dW, dR, dt)
    return np.clip(init.weights + dW, 0.0, 1.0), dR @ init.R, np.einsum("tij,tj->ti", dR, init.t) + dt


def fit_take(take_path: str | Path, calibration: str | Path | Calibration, rig: Rig, config: FitConfig,
             out_dir: str | Path, tracking_rig: Rig | None = None) -> FitResult:
    """Fit a multi-view take: landmark initialisation, then analysis by synthesis.

    Args:
        take_path: the take folder (FORMATS.md §2).
        calibration: calibration.json path or a loaded Calibration.
        rig: the animation rig: its shape names and geometry define the exported weights.
        config: fit settings.
        out_dir: where caches and the QA video go (created; the caller writes the exports).
        tracking_rig: a tuned rig (``facecap tune-rig``) to track with; same shape names as ``rig``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[phase], clock = now - clock, now

    calib = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    tracking_rig = rig if tracking_rig is None else tracking_rig
    if tracking_rig.shape_names != rig.shape_names:
        raise FacecapError("the tracking rig's shape names differ from the animation rig's")
    device = resolve_device(config.device)
    with open_take(take_path, calib) as take:
        calib = take.calibration
        track, samples = tracked_rig(tracking_rig, calib.units, config)
        landmarks = load_fit_landmarks(take, config, out_dir)
        lap("landmarks")
        init = initialise_from_landmarks(landmarks, calib, track, config.init)
        lap("init")
        state = _state_from_init(init, config, device)
        history: dict[str, list[float]] = {}
        effective_loss = None
        photometric_rms, qa_video = np.full(take.num_frames, np.nan), None
        if config.photometric:
            cams = CameraTensors.from_calibration(calib, device=device)
            model = FitModel.build(track, cams, samples, device)
            check = _TakeCheck(take, config, device, out_dir)
            try:
                history, effective_loss = _photometric_fit(take, model, state, landmarks, calib, track, config,
                                                           device, check)
            finally:
                check.close()
            photometric_rms, qa_video = check.errors, check.path
            lap("photometric")
        anim = Animation(shape_names=rig.shape_names, weights=state.weights.double().cpu().numpy(),
                         R=_nearest_rotations(state.R.double().cpu().numpy()), t=state.t.double().cpu().numpy(),
                         fps=take.fps, units=calib.units, frames=np.arange(take.num_frames),
                         start_timecode=take.start_timecode)
        identity = state.identity.double().cpu().numpy()
        errors = _landmark_errors(track, anim, identity, landmarks, calib)
    seconds["total"] = time.perf_counter() - started
    log.info("fit %d frames in %.1f s (%.2f frames/s), median landmark error %.2f px", anim.num_frames,
             seconds["total"], anim.num_frames / seconds["total"], float(np.median(errors)))
    return FitResult(animation=anim, identity=identity, frame_ok=init.frame_ok, landmark_error_px=errors,
                     photometric_rms=photometric_rms, qa_video=qa_video, loss_history=history, seconds=seconds,
                     effective_loss=effective_loss)


def write_fit_report(result: FitResult, config: FitConfig, path: str | Path) -> None:
    """The JSON report: per-frame landmark error and interpolation flags, timings, config and the loss
    weights as the take scaled them."""
    report = {
        "frames": [{"frame": int(f), "landmark_error_px": float(e),
                    "photometric_rms": None if np.isnan(p) else float(p), "interpolated": not bool(ok)}
                   for f, e, p, ok in zip(result.animation.frame_numbers, result.landmark_error_px,
                                          result.photometric_rms, result.frame_ok)],
        "identity": result.identity.tolist(),
        "seconds": result.seconds,
        "frames_per_second": result.animation.num_frames / max(result.seconds.get("total", 1e-9), 1e-9),
        "config": config_to_dict(config),
        "effective_loss": None if result.effective_loss is None else config_to_dict(result.effective_loss),
    }
    Path(path).write_text(json.dumps(report, indent=1))
