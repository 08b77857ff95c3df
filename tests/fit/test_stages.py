"""The fit's schedule as data: the plan a config makes, and each stage on its own."""

import dataclasses

import numpy as np
import pytest
import torch

from facecap.camera import load_calibration
from facecap.fit.config import ScheduleConfig
from facecap.fit.optimize import optimise_batch
from facecap.fit.problem import SequenceState
from facecap.fit.stages import (FitBatch, FitContext, ProfileStart, Reinitialise, RemoveDetectorOffsets,
                                frame_params_from, keyframe_indices, plan_keyframes, plan_stages, relaxed_support)
from facecap.fit.take_loss import scale_loss
from facecap.take.landmarks import load_landmarks
from tests.fit.conftest import tiny_batch, tiny_config, tiny_model

SCHEDULE = ScheduleConfig(keyframes=4, keyframe_scales=[0.5, 1.0], keyframe_iterations=[6, 4], scales=[0.5, 1.0],
                          iterations=[4, 3], passes=2)


def test_plan_of_a_take_with_detected_landmarks():
    """Keyframes, the detector's offsets, a re-initialisation with keyframe corrections, then two sweeps of
    relaxed batches of which the second's are final."""
    plan = plan_stages(SCHEDULE, num_frames=10, batch_frames=4, detected_landmarks=True, has_identity=True)
    keys = (0, 3, 6, 9)
    spans = [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    assert plan == [FitBatch("keyframes", keys, ((0.5, 6), (1.0, 4))),
                    RemoveDetectorOffsets(keys),
                    Reinitialise(keys, keyframe_corrections=True),
                    *(FitBatch("pass1", s, ((0.5, 4), (1.0, 3)), relaxed=True) for s in spans),
                    *(FitBatch("pass2", s, ((0.5, 4), (1.0, 3)), relaxed=True, final=True) for s in spans)]
    assert [s.frames for s in plan if s.frames is not None] == [keys, *spans, *spans]   # what the feed reads
    assert sum(s.final for s in plan) == 3 and sorted(f for s in plan if s.final for f in s.frames) == list(range(10))


@pytest.mark.parametrize("detected, identity, expected", [
    (False, True, [Reinitialise((0, 3, 6, 9), keyframe_corrections=False)]),   # a file's noise is not carried
    (False, False, []),                                                        # nothing for a re-init to add
    (True, False, [RemoveDetectorOffsets((0, 3, 6, 9)), Reinitialise((0, 3, 6, 9), keyframe_corrections=True)]),
])
def test_plan_after_the_keyframes_depends_on_the_landmarks_and_the_rig(detected, identity, expected):
    plan = plan_stages(SCHEDULE, 10, 4, detected_landmarks=detected, has_identity=identity)
    assert plan[1:len(expected) + 1] == expected
    assert isinstance(plan[len(expected) + 1], FitBatch) and plan[len(expected) + 1].name == "pass1"


def test_plan_without_keyframes_or_sweeps():
    no_keyframes = plan_stages(dataclasses.replace(SCHEDULE, keyframes=0), 5, 4, True, True)
    assert [s.name for s in no_keyframes] == ["pass1", "pass1", "pass2", "pass2"]
    check_only = plan_stages(dataclasses.replace(SCHEDULE, keyframes=0, passes=0), 5, 4, True, True)
    assert check_only == [FitBatch("check", (0, 1, 2, 3), ((1.0, 0),), final=True),
                          FitBatch("check", (4,), ((1.0, 0),), final=True)]


def test_plan_from_an_actor_profile():
    """With a profile the sweeps are all, unless the landmarks are detected and the profile has no offsets for
    the take's cameras: then a keyframe stage at the keyframe scales from 0.5 up measures them (with the
    re-initialisation that carries the keyframes' corrections to the other frames)."""
    sweeps = plan_stages(SCHEDULE, 10, 4, True, True)[3:]
    assert plan_stages(SCHEDULE, 10, 4, True, True, ProfileStart(detector_offsets=True)) == sweeps
    assert plan_stages(SCHEDULE, 10, 4, False, True, ProfileStart(detector_offsets=False)) == sweeps
    keys = (0, 3, 6, 9)
    three_scales = dataclasses.replace(SCHEDULE, keyframe_scales=[0.25, 0.5, 1.0], keyframe_iterations=[9, 6, 4])
    remeasured = plan_stages(three_scales, 10, 4, True, True, ProfileStart(detector_offsets=False))
    assert remeasured[:3] == [FitBatch("keyframes", keys, ((0.5, 6), (1.0, 4))), RemoveDetectorOffsets(keys),
                              Reinitialise(keys, keyframe_corrections=True)]
    assert remeasured[3:] == sweeps


def test_keyframes_alone_without_the_reinitialisation():
    """What an actor profile is built from: the keyframes and, for detected landmarks, their offsets."""
    assert plan_keyframes(SCHEDULE, 10, True, True, reinitialise=False) == \
        [FitBatch("keyframes", (0, 3, 6, 9), ((0.5, 6), (1.0, 4))), RemoveDetectorOffsets((0, 3, 6, 9))]
    assert plan_keyframes(dataclasses.replace(SCHEDULE, keyframes=0), 10, True, True) == []


def test_plans_compare_by_the_work_they_do():
    assert plan_stages(SCHEDULE, 10, 4, True, True) == plan_stages(SCHEDULE, 10, 4, True, True)
    assert plan_stages(SCHEDULE, 10, 4, True, True) != plan_stages(SCHEDULE, 10, 5, True, True)
    assert plan_stages(SCHEDULE, 10, 4, True, True) != plan_stages(dataclasses.replace(SCHEDULE, iterations=[4, 4]),
                                                                   10, 4, True, True)


def test_keyframes_spread_over_the_take():
    assert keyframe_indices(60, 8) == (0, 8, 17, 25, 34, 42, 51, 59)
    assert keyframe_indices(3, 8) == (0, 1, 2)


def test_relaxed_support_is_the_weights_on_now():
    weights = torch.tensor([[0.0, 0.05, 0.3], [0.049, 1.0, 0.0], [0.2, 0.2, 0.2]])
    state = SequenceState(weights, torch.eye(3).expand(3, 3, 3), torch.zeros(3, 3), torch.zeros(0))
    on = relaxed_support(state, torch.tensor([0, 1]), 0.05)
    assert on.tolist() == [[False, True, True], [False, True, False]]
    assert relaxed_support(state, torch.tensor([0, 1]), 0.0) is None


def _context(rig, take, config):
    calibration = load_calibration(take / "calibration.json")
    track = rig.in_units(calibration.units)
    return FitContext(tiny_model(rig, take), track, calibration, load_landmarks(take / "landmarks.json"),
                      scale_loss(config.loss, 0.64, 0.3, detected_landmarks=False), config.init)


def _state(truth, rig, take, offset=0.1):
    """The truth, every other shape's weight raised by ``offset`` (a start for Gauss-Newton to improve)."""
    raised = truth.weights + offset * (np.arange(rig.num_shapes) % 2)
    start = frame_params_from(np.clip(raised, 0, 1), truth.R, truth.t, np.zeros(rig.num_identities),
                              torch.device("cpu"))
    return SequenceState.start(start, damping=0.1)


def test_fit_batch_runs_its_scales_from_one_relaxed_support_and_commits_the_last(tiny_take):
    """The stage is Gauss-Newton at each of its scales in turn, the relaxed lasso's support taken from the
    weights when the stage begins, its evidence committed once, from the last scale."""
    rig, take, truth = tiny_take
    config = tiny_config(take, True)
    ctx = _context(rig, take, config)
    frames = (1, 2, 3)
    batch = tiny_batch(take, frames, silhouettes=True)
    stage = FitBatch("pass1", frames, ((0.5, 2), (1.0, 2)), relaxed=True)

    state = _state(truth, rig, take)
    stage.run(ctx, state, batch)

    reference = _state(truth, rig, take)
    index = torch.tensor(frames)
    on = reference.weights[index] >= ctx.loss.weights.l1_relaxed_above
    assert 0 < int(on.sum()) < on.numel()
    for scale, iterations in stage.steps:
        fit = optimise_batch(ctx.model, reference, np.array(frames), batch.observations(ctx.landmarks, scale),
                             ctx.loss.weights, iterations, on)
        reference.store(index, fit.params, fit.appearance, fit.damping)
    torch.testing.assert_close(state.weights, reference.weights, rtol=0, atol=0)
    torch.testing.assert_close(state.identity, reference.identity, rtol=0, atol=0)
    torch.testing.assert_close(state.appearance_stats.albedo_den, fit.evidence.appearance_stats.albedo_den)
    assert list(state.history) == ["pass1@0.5", "pass1@1"] and len(state.history["pass1@1"]) == 3
    assert not torch.equal(state.weights[index], _state(truth, rig, take).weights[index])   # it did move


def test_fit_batch_lowers_the_energy_and_its_history_adds_up_over_batches(tiny_take):
    rig, take, truth = tiny_take
    ctx = _context(rig, take, tiny_config(take, True))
    state = _state(truth, rig, take)
    for frames in ((0, 1, 2), (3, 4, 5)):
        FitBatch("pass1", frames, ((1.0, 3),)).run(ctx, state, tiny_batch(take, frames, silhouettes=True))
    energies = state.history["pass1@1"]
    assert energies[-1] < 0.9 * energies[0]
    assert state.appearance_stats.response.shape[1] == 3                 # committed for every camera


def test_remove_detector_offsets_stage_corrects_the_states_landmarks(tiny_take):
    """Detections a constant few px off per camera and landmark come back to within the stand-in detector's
    own 1 px noise."""
    rig, take, truth = tiny_take
    clean = load_landmarks(take / "landmarks.json")
    offsets = np.random.default_rng(4).uniform(-6, 6, clean.points.shape[1:])
    ctx = dataclasses.replace(_context(rig, take, tiny_config(take, True)),
                              landmarks=dataclasses.replace(clean, points=clean.points + offsets))
    state = _state(truth, rig, take, offset=0.0)
    RemoveDetectorOffsets((0, 2, 5)).run(ctx, state, None)
    seen = clean.confidence > 0
    corrected = state.landmarks(ctx.landmarks).points
    assert np.median(np.linalg.norm(corrected - clean.points, axis=-1)[seen]) < 1.5


def test_reinitialise_stage_restarts_the_frames_between_the_keyframes(tiny_take):
    rig, take, truth = tiny_take
    ctx = _context(rig, take, tiny_config(take, True))
    state = _state(truth, rig, take, offset=0.3)
    before = state.weights.clone()
    Reinitialise((0, 5), keyframe_corrections=False).run(ctx, state, None)
    torch.testing.assert_close(state.weights[[0, 5]], before[[0, 5]], rtol=0, atol=0)   # the keyframes stay
    between = state.weights[1:5]
    assert not torch.allclose(between, before[1:5])
    torch.testing.assert_close(between, state.prior.weights[1:5])        # the new landmark init, which is the prior
    # The landmark init is far closer to the truth than the start was.
    true = torch.as_tensor(truth.weights[1:5], dtype=torch.float32)
    assert float((between - true).abs().mean()) < 0.5 * float((before[1:5] - true).abs().mean())
