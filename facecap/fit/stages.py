"""The fit's schedule as data: the stages a take goes through, planned from the config, each a small
step over the take's :class:`SequenceState`.

:func:`plan_stages` turns the schedule into a list; :mod:`facecap.fit.pipeline` runs it in order, reading
the frames each stage asks for. The plan of a take with detected landmarks and the default schedule is

1. ``keyframes``: Gauss-Newton on frames spread over the take, coarse to fine. They settle the identity,
   the appearance and the landmark initialisation's worst errors.
2. ``detector offsets`` (detected landmarks): each camera's median offset of every landmark from the
   keyframes' fits is removed from the detections.
3. ``reinitialise``: the landmark initialisation of the other frames again, with the keyframes' identity
   (and, for detected landmarks, the corrections the keyframes' fits made to it).
4. ``pass1``, ``pass2``: sweeps over the take in batches of consecutive frames, coarse to fine; a batch of
   the last sweep is final when it is done.

With an actor profile (:mod:`facecap.fit.actor`) the identity and appearance are known before the first
stage, and so are the detector's offsets where the profile's cameras are the take's: the plan is the
sweeps alone. Where they are other cameras, a short keyframe stage (its finer scales) measures the
offsets again before the sweeps.

Stages are frozen values (frames as tuples of take frame indices): two plans compare equal when they
would do the same work, which is what a checkpoint records and what tests check.
"""

import logging
import warnings
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch

from facecap.camera.model import Calibration
from facecap.fit.config import ScheduleConfig
from facecap.fit.feed import FrameBatch
from facecap.fit.init import (InitConfig, Initialisation, initialise_from_landmarks, interpolate_missing_frames,
                              landmark_pixels)
from facecap.fit.optimize import batches, optimise_batch
from facecap.fit.problem import FitModel, FrameParams, SequenceState
from facecap.fit.take_loss import TakeLoss
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D

__all__ = ["FitContext", "Stage", "FitBatch", "RemoveDetectorOffsets", "Reinitialise", "ProfileStart",
           "plan_stages", "plan_keyframes", "keyframe_indices", "relaxed_support", "detector_offsets",
           "keyframe_corrected", "frame_params_from"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitContext:
    """What every stage reads and none changes.

    Attributes:
        model: the tracking rig, cameras and samples the Gauss-Newton fit works with.
        rig: the tracking rig in the calibration's units (for the landmark initialisation).
        calibration: the take's cameras.
        landmarks: the take's landmarks as given (file or detector).
        loss: the loss weights as scaled for the take.
        init: the landmark initialisation's settings.
    """

    model: FitModel
    rig: Rig
    calibration: Calibration
    landmarks: Landmarks2D
    loss: TakeLoss
    init: InitConfig


class Stage(Protocol):
    """One step of the plan. ``frames``: the take frames whose images it needs (None: none); ``final``:
    its frames are final when it is done (the pipeline checks them then)."""

    name: str
    frames: tuple[int, ...] | None
    final: bool

    def run(self, ctx: FitContext, state: SequenceState, batch: FrameBatch | None) -> None:
        """Do the stage's work on ``state``, with the frames it asked for in ``batch``."""


def relaxed_support(state: SequenceState, index: torch.Tensor, threshold: float) -> torch.Tensor | None:
    """[B, K] the relaxed lasso's support for the frames ``index``: their weights at or above ``threshold``
    now, before their batch is fitted (None when ``threshold`` is 0: the prior on all)."""
    return state.weights[index] >= threshold if threshold > 0 else None


@dataclass(frozen=True)
class FitBatch:
    """Gauss-Newton on a batch of frames at each (image scale, iterations) of ``steps``, coarse to fine.

    The last scale's evidence on the appearance and identity joins the take's. With ``relaxed``, the
    weights on when the batch's fit begins (``loss.l1_relaxed_above``) are the relaxed lasso's support
    for all its scales.
    """

    name: str
    frames: tuple[int, ...]
    steps: tuple[tuple[float, int], ...]
    relaxed: bool = False
    final: bool = False

    def run(self, ctx: FitContext, state: SequenceState, batch: FrameBatch | None) -> None:
        frames = np.asarray(self.frames)
        index = torch.as_tensor(frames, device=state.weights.device)
        loss = ctx.loss.weights
        on = relaxed_support(state, index, loss.l1_relaxed_above) if self.relaxed else None
        fit = None
        for scale, iterations in self.steps:
            observations = batch.observations(ctx.landmarks, scale, state.landmark_offsets)
            fit = optimise_batch(ctx.model, state, frames, observations, loss, iterations, on)
            state.store(index, fit.params, fit.appearance, fit.damping)
            state.record(f"{self.name}@{scale:g}", fit.energies)
        if fit is not None:
            state.commit(fit.evidence)



@dataclass(frozen=True)
class RemoveDetectorOffsets:
    """The detections less each camera's median offset of every landmark from the fitted keyframes.

    A detector's points are not exactly the rig's landmark vertices: MediaPipe's brows, nose and jaw sit
    millimetres away, by amounts that depend on the face and the view. The keyframes are fitted
    photometrically without them; their offsets from those fits are then known and removed, so that the
    landmarks agree with the photometry on every frame.
    """

    keyframes: tuple[int, ...]
    name: ClassVar[str] = "detector offsets"
    frames: ClassVar[None] = None
    final: ClassVar[bool] = False

    def run(self, ctx: FitContext, state: SequenceState, batch: FrameBatch | None) -> None:
        state.landmark_offsets = detector_offsets(ctx.landmarks, state, np.asarray(self.keyframes), ctx.calibration,
                                                  ctx.rig)



@dataclass(frozen=True)
class Reinitialise:
    """The landmark initialisation of the frames between the keyframes again, with the keyframes' identity.

    The landmark initialisation cannot tell identity from expression; with the identity known its weights
    and poses are far better starting points for the sweeps. With ``keyframe_corrections`` each frame
    also takes on the correction (weights, rotation, translation) that the photometric fit made to the
    landmark initialisation at the keyframes around it, interpolated: what is left of a detector's error
    is its bias for a pose and expression, which changes slowly over the take. Noise that changes from
    frame to frame (a landmarks file's) it would add to, not remove.
    """

    keyframes: tuple[int, ...]
    keyframe_corrections: bool
    name: ClassVar[str] = "reinitialise"
    frames: ClassVar[None] = None
    final: ClassVar[bool] = False

    def run(self, ctx: FitContext, state: SequenceState, batch: FrameBatch | None) -> None:
        keyframes = np.asarray(self.keyframes)
        identity = state.identity.double().cpu().numpy()
        init = initialise_from_landmarks(state.landmarks(ctx.landmarks), ctx.calibration, ctx.rig, ctx.init,
                                         identity=identity)
        weights, R, t = keyframe_corrected(init, state, keyframes) if self.keyframe_corrections else \
            (init.weights, init.R, init.t)
        device = state.weights.device
        redo = torch.as_tensor(np.setdiff1d(np.arange(len(init.weights)), keyframes), device=device)
        between = frame_params_from(weights, R, t, identity, device)
        state.restart_frames(redo, between.weights[redo], between.R[redo], between.t[redo],
                             prior=frame_params_from(init.weights, init.R, init.t, init.identity, device))



def keyframe_indices(num_frames: int, count: int) -> tuple[int, ...]:
    """``count`` frames spread evenly over the take, first and last included (fewer in a short take)."""
    return tuple(int(f) for f in np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round()))


@dataclass(frozen=True)
class ProfileStart:
    """What an actor profile gives a fit before its first stage: the identity and the appearance always;
    ``detector_offsets``: the detector's offsets too (the profile's cameras are the take's)."""

    detector_offsets: bool


# With an actor profile, the keyframe stage that measures the detector's offsets again keeps the keyframe
# scales from this one up: the identity and appearance are known, only the keyframes' expressions settle.
PROFILE_KEYFRAME_MIN_SCALE = 0.5


def plan_keyframes(schedule: ScheduleConfig, num_frames: int, detected_landmarks: bool, has_identity: bool,
                   steps: tuple[tuple[float, int], ...] | None = None, reinitialise: bool = True) -> list[Stage]:
    """The stages before the sweeps: the keyframes' fit at ``steps`` (default the schedule's keyframe
    stages), the detector's offsets (detected landmarks) and, with ``reinitialise``, the re-initialisation of
    the other frames (none without keyframes)."""
    if schedule.keyframes == 0:
        return []
    keyframes = keyframe_indices(num_frames, schedule.keyframes)
    plan: list[Stage] = [FitBatch("keyframes", keyframes, tuple(schedule.keyframe_stages) if steps is None else steps)]
    if detected_landmarks:
        plan.append(RemoveDetectorOffsets(keyframes))
    if reinitialise and (detected_landmarks or has_identity):
        plan.append(Reinitialise(keyframes, keyframe_corrections=detected_landmarks))
    return plan


def plan_stages(schedule: ScheduleConfig, num_frames: int, batch_frames: int, detected_landmarks: bool,
                has_identity: bool, profile: ProfileStart | None = None) -> list[Stage]:
    """The stages that fit a take of ``num_frames`` frames, in order (see the module docstring).

    ``detected_landmarks``: the landmarks come from a detector (their offsets are measured and removed);
    ``has_identity``: the tracking rig has identity modes (or a neutral correction) for the keyframes to fit;
    ``profile``: what an actor profile gives before the first stage (None: no profile).
    """
    if profile is None:
        plan = plan_keyframes(schedule, num_frames, detected_landmarks, has_identity)
    elif detected_landmarks and not profile.detector_offsets:
        fine = tuple((s, n) for s, n in schedule.keyframe_stages if s >= PROFILE_KEYFRAME_MIN_SCALE)
        plan = plan_keyframes(schedule, num_frames, True, has_identity, fine or tuple(schedule.keyframe_stages[-1:]))
    else:
        plan = []
    spans = [tuple(range(start, stop)) for start, stop in batches(num_frames, batch_frames)]
    for sweep in range(1, schedule.passes + 1):
        plan += [FitBatch(f"pass{sweep}", span, tuple(schedule.sweep_stages), relaxed=True,
                          final=sweep == schedule.passes) for span in spans]
    if schedule.passes == 0:     # the frames are final as they stand: only their appearance is solved
        plan += [FitBatch("check", span, ((1.0, 0),), final=True) for span in spans]
    return plan


def frame_params_from(weights: np.ndarray, R: np.ndarray, t: np.ndarray, identity: np.ndarray,
                      device: torch.device) -> FrameParams:
    """[T, K], [T, 3, 3], [T, 3] and [I] arrays as the fit's float32 parameters on ``device``."""
    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=device)
    return FrameParams(tensor(weights), tensor(R), tensor(t), tensor(identity))


def detector_offsets(landmarks: Landmarks2D, state: SequenceState, keyframes: np.ndarray, calibration: Calibration,
                     rig: Rig) -> np.ndarray:
    """[C, L, 2] each camera's median offset of every detected landmark from the fitted ``keyframes``'
    landmark vertices (0 where a landmark was never seen)."""
    index = torch.as_tensor(keyframes, device=state.weights.device)
    fitted = (a.double().cpu().numpy() for a in (state.weights[index], state.identity, state.R[index], state.t[index]))
    px = landmark_pixels(rig, *fitted, calibration)
    seen = landmarks.confidence[keyframes] > 0
    offsets = np.where(seen[..., None], landmarks.points[keyframes] - px, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                   # all-NaN: a landmark never seen
        median = np.nan_to_num(np.nanmedian(offsets, axis=0))
    if seen.any():
        log.info("detector offsets from the fitted keyframes: median %.1f px, 90th percentile %.1f px",
                 *np.percentile(np.linalg.norm(median, axis=-1)[seen.any(0)], [50, 90]))
    return median


def keyframe_corrected(init: Initialisation, fitted: SequenceState,
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
