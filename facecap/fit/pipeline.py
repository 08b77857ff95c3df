"""``fit_take``: a take, its calibration and a rig in; per-frame weights and head pose out.

The landmark initialisation starts every frame (or, with ``init.model``, the learned initialiser,
:func:`facecap.learn.infer.network_start`); the photometric fit then runs the stages that
:func:`facecap.fit.stages.plan_stages` plans from the schedule, in order, over one
:class:`SequenceState`. The frames come from :func:`facecap.fit.feed.feed_batches`, which reads each
stage's batch while the stage before runs. A batch is checked (its photometric error, the QA video)
when the stage that makes it final is done, with the frames already read.
"""

import itertools
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from facecap.animation import Animation
from facecap.camera.model import Calibration, load_calibration
from facecap.camera.torch_camera import CameraTensors
from facecap.errors import ConfigError, FacecapError
from facecap.fit.appearance import photometric_samples
from facecap.fit.checkpoint import CHECKPOINT_NAME, Checkpoint, fingerprint, load_checkpoint, save_checkpoint
from facecap.fit.config import FitConfig
from facecap.fit.feed import FrameBatch, default_threads, feed_batches
from facecap.fit.init import Initialisation, initialise_from_landmarks, interpolate_missing_frames, landmark_pixels
from facecap.fit.neutral import with_neutral_correction
from facecap.fit.optimize import face_brightness
from facecap.fit.problem import FitModel, SequenceState
from facecap.fit.raster_sampler import photometric_model
from facecap.fit.qa import QAVideo, check_frames, join_videos
from facecap.fit.result import FitResult
from facecap.fit.stages import FitContext, ProfileStart, Stage, frame_params_from, plan_stages
from facecap.fit.take_loss import TakeLoss, scale_loss
from facecap.progress import track
from facecap.render.ops import make_context
from facecap.rig.model import Rig
from facecap.rig.scale_check import check_rig_scale
from facecap.take.landmarks import Landmarks2D, detect_landmarks, load_landmarks
from facecap.take.reader import Take, open_take
from facecap.units import unit_scale

if TYPE_CHECKING:
    from facecap.fit.actor import ActorProfile

__all__ = ["fit_take", "opened_fit", "OpenedFit", "run_stages", "take_loss", "resolve_device", "load_fit_landmarks",
           "tracked_rig"]

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available; an unavailable CUDA device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device': {name} asked for, but torch sees no CUDA GPU (use device=cpu)")
    return device


def load_fit_landmarks(take: Take, config: FitConfig, work_dir: Path) -> Landmarks2D:
    """Landmarks from the user's file, else detected with MediaPipe (cached in ``work_dir`` unless the config
    names a cache)."""
    source = config.landmarks
    if not source.detected:
        landmarks = load_landmarks(source.landmarks_file).cameras(take.camera_names)
        return landmarks.for_take(take.num_frames, source.landmarks_file, take.first_frame)
    if not source.model_path:
        raise ConfigError("config key 'landmarks.model_path': give MediaPipe's face_landmarker.task, or a "
                          "landmarks file with landmarks.landmarks_file")
    cache = Path(source.cache_dir) if source.cache_dir else work_dir / "landmarks_cache"
    return detect_landmarks(take, source.model_path, cache_dir=cache).cameras(take.camera_names)


def tracked_rig(rig: Rig, units: str, config: FitConfig) -> tuple[Rig, np.ndarray]:
    """The rig as the fit tracks with it, in ``units`` (with a smooth neutral correction where it has
    no identity modes), and its photometric samples [N]."""
    samples = photometric_samples(rig, config.exclude_materials)
    return with_neutral_correction(rig.in_units(units), samples, config.neutral_degree), samples


def take_loss(config: FitConfig, model: FitModel, state: SequenceState, first: FrameBatch, units: str) -> TakeLoss:
    """The loss weights for this take, from the face's resolution at the initial poses and its colours
    in the first batch the fit reads."""
    pixels_per_mm = model.pixels_per_unit(state.R, state.t) / unit_scale(units, "mm")
    params = state.frame_params(torch.as_tensor(first.frames, device=state.weights.device))
    return scale_loss(config.loss, pixels_per_mm, face_brightness(model, params, first.images, first.view_ok),
                      config.landmarks.detected)


class _TakeCheck:
    """Per-frame photometric error at full resolution, and the QA video when asked for, batch by batch.

    Each final batch's rows of the QA video go to a part of their own in ``parts_dir``, joined into one
    video at the end: a fit that resumes keeps the parts written before it stopped.
    """

    def __init__(self, take: Take, config: FitConfig, device: torch.device, out_dir: Path, parts_dir: Path) -> None:
        self.errors = np.full(take.num_frames, np.nan)
        self.errors_per_camera = np.full((take.num_frames, len(take.camera_names)), np.nan)
        self.path = out_dir / "qa.mp4" if config.qa_video else None
        self._ctx = make_context("auto", device) if self.path else None
        self._parts = parts_dir
        self._take = take
        self._timecode = config.export.timecode
        self._scale = config.qa_scale

    def add(self, model: FitModel, state: SequenceState, batch: FrameBatch) -> None:
        result = check_frames(model, state, batch.frames, batch.images, batch.view_ok, self._ctx, self._scale)
        self.errors[batch.frames] = result.photometric_rms
        self.errors_per_camera[batch.frames] = result.photometric_rms_per_camera
        if self.path is not None:
            take = self._take
            self._parts.mkdir(parents=True, exist_ok=True)
            with QAVideo(self._parts / f"qa_{int(batch.frames[0]):09d}.mp4", take.fps, take.camera_names,
                         take.start_timecode, self._timecode) as part:
                part.write(result.panels, take.first_frame + batch.frames)

    def finish(self) -> None:
        """Join the QA video's parts (in frame order) into qa.mp4."""
        if self.path is not None:
            parts = sorted(self._parts.glob("qa_*.mp4"))
            join_videos(parts, self.path)
            for part in parts:
                part.unlink()


class _Checkpoints:
    """Writes the fit's checkpoint after a stage when ``seconds`` have passed since the last one."""

    def __init__(self, path: Path | None, fingerprint: dict[str, str], seconds: float) -> None:
        self.path, self.fingerprint, self.seconds = path, fingerprint, seconds
        self._last = time.monotonic()

    def stage_done(self, done: int, total: int, state: SequenceState, loss: TakeLoss, check: _TakeCheck) -> None:
        if self.path is None or done == total or time.monotonic() - self._last < self.seconds:
            return
        save_checkpoint(self.path, Checkpoint(done, state, loss, check.errors, check.errors_per_camera,
                                              self.fingerprint))
        self._last = time.monotonic()
        log.debug("checkpoint after stage %d of %d: %s", done, total, self.path)


def run_stages(plan: list[Stage], state: SequenceState, take: Take, landmarks: Landmarks2D, model: FitModel, rig: Rig,
               config: FitConfig, check: _TakeCheck | None = None, checkpoints: _Checkpoints | None = None,
               done: int = 0, loss: TakeLoss | None = None) -> TakeLoss:
    """Run the stages of ``plan`` after the first ``done`` on ``state`` in order, each with the frames it asks
    for; returns the loss weights as scaled for the take (``loss``, or from the first batch read). Final
    batches are checked with ``check`` and checkpoints written by ``checkpoints`` (None: neither)."""
    device = state.weights.device
    todo = plan[done:]
    reads = [np.asarray(stage.frames) for stage in todo if stage.frames is not None]
    reader = feed_batches(take, reads, device, silhouettes=config.loss.silhouette > 0,
                          threads=config.reader_threads or default_threads())
    try:
        batches = iter(reader)
        if loss is None:
            first = next(reader)
            loss = take_loss(config, model, state, first, take.calibration.units)
            batches = itertools.chain([first], reader)
        ctx = FitContext(model, rig, take.calibration, landmarks, loss, config.init)
        for k, stage in enumerate(track(todo, "fit", "stage"), start=done + 1):
            batch = next(batches) if stage.frames is not None else None
            if batch is not None:
                state.note_damaged(batch.damaged)
            stage.run(ctx, state, batch)
            if stage.final and check is not None:
                check.add(model, state, batch)
            if checkpoints is not None:
                checkpoints.stage_done(k, len(plan), state, loss, check)
    finally:
        reader.close()
    return loss


def _landmark_errors(rig: Rig, anim: Animation, identity: np.ndarray, landmarks: Landmarks2D,
                     calib: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """[T] RMS reprojection error in pixels of the confident landmarks over all views, and [T, C] per view
    (NaN where a view has none)."""
    px = landmark_pixels(rig, anim.weights, identity, anim.R, anim.t, calib)
    err2 = ((px - landmarks.points) ** 2).sum(-1)
    conf = landmarks.confidence > 0
    total = np.sqrt((err2 * conf).sum((1, 2)) / np.maximum(conf.sum((1, 2)), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_view = np.sqrt((err2 * conf).sum(2) / conf.sum(2))
    return total, per_view


def _nearest_rotations(R: np.ndarray) -> np.ndarray:
    """Project [T, 3, 3] float32-accumulated rotations back onto SO(3)."""
    U, _, Vt = np.linalg.svd(R)
    return U @ Vt


@dataclass
class OpenedFit:
    """A take opened for fitting, every frame initialised from its landmarks.

    Attributes:
        take: the open take; calibration: its cameras' (``take.calibration``).
        rig: the tracking rig as the fit tracks with it (:func:`tracked_rig`); samples: [N] its photometric samples.
        landmarks: the take's landmarks as given (file or detector).
        init: the landmark initialisation of every frame (with a profile: its identity, the landmarks less
            its detector offsets where they are known).
        state: the take's state at the initialisation (with a profile: what it knows of the performer adopted).
        model: the Gauss-Newton fit's fixed model (None without the photometric fit).
        profile: what the actor profile gives the plan (None: no profile).
    """

    take: Take
    calibration: Calibration
    rig: Rig
    samples: np.ndarray
    landmarks: Landmarks2D
    init: Initialisation
    state: SequenceState
    model: FitModel | None
    profile: ProfileStart | None


@contextmanager
def opened_fit(take_path: str | Path, calibration: Calibration, tracking_rig: Rig, config: FitConfig,
               work_dir: Path, device: torch.device, frames: tuple[int, int | None] | None = None,
               actor: "ActorProfile | None" = None, laps: Callable[[str], None] | None = None) -> Iterator[OpenedFit]:
    """Open the take, read or detect its landmarks, initialise every frame and build the state and model
    (see :func:`fit_take` for the arguments); ``laps(phase)`` is called when the landmarks and the
    initialisation are done."""
    from facecap.fit.actor import performer_start
    if config.init.model:
        from facecap.learn.infer import network_start         # facecap.learn builds on the fit
        from facecap.learn.modelfile import load_init_model
        network = load_init_model(config.init.model, device)
    with open_take(take_path, calibration, cameras=config.cameras or None, frames=frames) as take:
        calib = take.calibration
        track_rig, samples = tracked_rig(tracking_rig, calib.units, config)
        landmarks = load_fit_landmarks(take, config, work_dir)
        if laps is not None:
            laps("landmarks")
        start = None if actor is None else performer_start(actor, calib, tracking_rig, samples, config)
        init = initialise_from_landmarks(landmarks if start is None else start.landmarks(landmarks), calib, track_rig,
                                         config.init, identity=None if start is None else start.identity)
        check_rig_scale(tracking_rig, init.landmarks_3d, calib.units, source=str(take_path))
        if config.init.model:
            init = network_start(network, take, landmarks, calib, track_rig, init)
        if laps is not None:
            laps("init")
        start_params = frame_params_from(init.weights, init.R, init.t, init.identity, device)
        state = SequenceState.start(start_params, config.schedule.damping)
        model = None
        if config.photometric:
            cams = CameraTensors.from_calibration(calib, device=device)
            model = photometric_model(track_rig, samples, cams, config, start_params)
        if start is not None:
            start.adopt(state)
        yield OpenedFit(take, calib, track_rig, samples, landmarks, init, state, model,
                        None if start is None else start.plan)


def fit_take(take_path: str | Path, calibration: str | Path | Calibration, rig: Rig, config: FitConfig,
             out_dir: str | Path, tracking_rig: Rig | None = None, work_dir: str | Path | None = None,
             resume: bool = False, frames: tuple[int, int | None] | None = None,
             actor: "ActorProfile | None" = None) -> FitResult:
    """Fit a multi-view take: landmark initialisation, then analysis by synthesis.

    Args:
        take_path: the take folder (docs/formats.md).
        calibration: calibration.json path or a loaded Calibration.
        rig: the animation rig: its shape names and geometry define the exported weights.
        config: fit settings.
        out_dir: where the QA video goes (created; the caller writes the exports).
        tracking_rig: a tuned rig (``facecap tune-rig``) to track with; same shape names as ``rig``.
        work_dir: where the fit keeps what outlives a killed run: the landmark cache, its checkpoint
            (``config.checkpoint_seconds``) and the QA video's finished parts. Default: ``out_dir``.
        resume: continue from the checkpoint in ``work_dir``; refused, saying what changed, when the take,
            rig, landmarks, actor profile or config are not those of the fit that wrote it.
        frames: (start, stop) to fit only frames start..stop-1 of the take (stop None: to its end); the
            animation's frame numbers are the take's.
        actor: the performer's profile (:mod:`facecap.fit.actor`): the fit starts from its identity,
            appearance and detector offsets and skips the keyframe stage that would measure them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = out_dir if work_dir is None else Path(work_dir)
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
    with opened_fit(take_path, calib, tracking_rig, config, work_dir, device, frames, actor, lap) as fit:
        take, calib, track_rig, landmarks, state = fit.take, fit.calibration, fit.rig, fit.landmarks, fit.state
        effective_loss = None
        photometric_rms, qa_video = np.full(take.num_frames, np.nan), None
        photometric_per_camera = np.full((take.num_frames, len(take.camera_names)), np.nan)
        if fit.model is not None:
            model = fit.model
            plan = plan_stages(config.schedule, take.num_frames, config.batch_frames, config.landmarks.detected,
                               bool(state.identity.numel()), fit.profile)
            check = _TakeCheck(take, config, device, out_dir, work_dir / "qa_parts")
            checkpoint_path = work_dir / CHECKPOINT_NAME
            checkpoints = _Checkpoints(checkpoint_path, fingerprint(take, track_rig, landmarks, config, actor),
                                       config.checkpoint_seconds)
            done, loss = 0, None
            if not resume:
                checkpoint_path.unlink(missing_ok=True)
                shutil.rmtree(work_dir / "qa_parts", ignore_errors=True)
            else:
                saved = load_checkpoint(checkpoint_path, checkpoints.fingerprint, device)
                state, done, loss = saved.state, saved.stages_done, saved.loss
                check.errors, check.errors_per_camera = saved.photometric_rms, saved.photometric_rms_per_camera
                log.info("resuming after stage %d of %d from %s", done, len(plan), checkpoint_path)
            effective_loss = run_stages(plan, state, take, landmarks, model, track_rig, config, check, checkpoints,
                                        done, loss).weights
            check.finish()
            checkpoint_path.unlink(missing_ok=True)
            photometric_rms, photometric_per_camera, qa_video = check.errors, check.errors_per_camera, check.path
            lap("photometric")
        frame_ok = fit.init.frame_ok.copy()
        frame_ok[state.frames_without_views(len(take.camera_names))] = False
        weights, R, t = interpolate_missing_frames(frame_ok, *(a.double().cpu().numpy() for a in
                                                               (state.weights, state.R, state.t)))
        anim = Animation(shape_names=rig.shape_names, weights=weights, R=_nearest_rotations(R), t=t, fps=take.fps,
                         units=calib.units, frames=take.first_frame + np.arange(take.num_frames),
                         start_timecode=take.start_timecode)
        identity = state.identity.double().cpu().numpy()
        errors, errors_per_camera = _landmark_errors(track_rig, anim, identity, landmarks, calib)
    seconds["total"] = time.perf_counter() - started
    log.info("fit %d frames in %.1f s (%.2f frames/s), median landmark error %.2f px", anim.num_frames,
             seconds["total"], anim.num_frames / seconds["total"], float(np.median(errors)))
    return FitResult(animation=anim, identity=identity, frame_ok=frame_ok, landmark_error_px=errors,
                     photometric_rms=photometric_rms, qa_video=qa_video, loss_history=state.history, seconds=seconds,
                     effective_loss=effective_loss, damaged_views=sorted(state.damaged_views.values()),
                     camera_names=tuple(calib.names), landmark_error_px_per_camera=errors_per_camera,
                     photometric_rms_per_camera=photometric_per_camera)
