"""Actor profiles: built from a take's keyframes, they hold the performer's identity, albedo and detector offsets;
a fit that starts from one skips its keyframe stage and keeps its accuracy."""

import dataclasses

import numpy as np
import pytest
import torch

from facecap.animation import load_animation_json
from facecap.camera import load_calibration
from facecap.camera.model import Calibration
from facecap.cli import main
from facecap.errors import FacecapError, FormatError
from facecap.fit import fit_take
from facecap.fit.accuracy import animation_accuracy
from facecap.fit.actor import (ProfileTake, build_actor_profile, load_actor, performer_start, save_actor)
from facecap.fit.appearance import Appearance, AppearanceStats, photometric_samples
from facecap.fit.chunks import animation_frames
from facecap.fit.config import LandmarkConfig
from facecap.fit.problem import FrameParams, SequenceState
from facecap.fit.stages import ProfileStart
from facecap.geometry.rotations import axis_angle_to_matrix
from facecap.rig import save_rig
from tests.fit.conftest import tiny_config


@pytest.fixture(scope="module")
def first_half(tiny_take, tmp_path_factory):
    """The profile of the tiny take's frames 0..2 (all three keyframes)."""
    rig, take, _ = tiny_take
    return build_actor_profile([ProfileTake(take, frames=(0, 3))], rig, tiny_config(take, True),
                               tmp_path_factory.mktemp("actor"))


def _texture_albedo(rig) -> np.ndarray:
    """[V, 3] the demo head's texture at each vertex's UV (v up), in [0, 1]: the albedo the take was rendered with."""
    uv = np.zeros((rig.num_vertices, 2))
    uv[rig.faces.ravel()] = rig.uv[rig.uv_faces.ravel()]
    texture = rig.texture[0].astype(np.float64) / 255.0
    H, W = texture.shape[:2]
    rows = np.clip(((1 - uv[:, 1]) * H).astype(int), 0, H - 1)
    cols = np.clip((uv[:, 0] * W).astype(int), 0, W - 1)
    return texture[rows, cols]


def test_profile_holds_the_performers_identity_albedo_and_their_evidence(tiny_take, first_half):
    """The keyframes' identity with its information (symmetric, positive definite), and an albedo that follows
    the texture the take was rendered with where the fit saw the vertex well (the better-seen half of the seen
    vertices: the texture's colours per vertex, read upside down, would correlate 0.1)."""
    rig, _, _ = tiny_take
    profile = first_half
    assert profile.identity.shape == (rig.num_identities,)
    info = profile.identity_information
    np.testing.assert_array_equal(info, info.T)
    assert np.linalg.eigvalsh(info).min() > 0
    seen = (profile.albedo_evidence > 0).all(1)
    assert seen.sum() > 0.3 * rig.num_vertices and not seen.all()       # the face, not the back of the head
    evidence = profile.albedo_evidence.min(1)
    well_seen = evidence > np.median(evidence[seen])
    truth = _texture_albedo(rig)[well_seen]
    for channel in range(3):                                             # albedo is known up to light and gain
        assert np.corrcoef(profile.albedo[well_seen, channel], truth[:, channel])[0, 1] > 0.75
    assert profile.cameras == ("cam00", "cam01", "cam02") and profile.detector_offsets is None
    assert [t["frames"] for t in profile.takes] == [[0, 3]] and profile.takes[0]["keyframes"] == [0, 1, 2]


def test_fit_from_a_profile_skips_the_keyframes_and_keeps_the_accuracy(tiny_take, first_half, tmp_path):
    """Frames 3..5 fitted from the profile of frames 0..2: no keyframe stage, the profile's identity carried, and
    the accuracy of a fit of those frames that estimates everything itself."""
    rig, take, truth = tiny_take
    config = dataclasses.replace(tiny_config(take, True), qa_video=False)
    plain = fit_take(take, take / "calibration.json", rig, config, tmp_path / "plain", frames=(3, 6))
    profiled = fit_take(take, take / "calibration.json", rig, config, tmp_path / "profiled", frames=(3, 6),
                        actor=first_half)
    assert any(name.startswith("keyframes") for name in plain.loss_history)
    assert not any(name.startswith("keyframes") for name in profiled.loss_history)
    iterations = {name: len(e) - 1 for name, e in profiled.loss_history.items()}
    assert sum(iterations.values()) < sum(len(e) - 1 for e in plain.loss_history.values())
    later = animation_frames(truth, 3, 6)
    before, after = (animation_accuracy(rig, r.animation, later) for r in (plain, profiled))
    print(f"plain:        {before.summary()}\nfrom profile: {after.summary()}")
    assert after.vertex_error_mean_mm < 1.0 and after.rotation_error_deg < 1.0
    assert after.vertex_error_mean_mm < 1.5 * before.vertex_error_mean_mm
    assert np.abs(profiled.identity - first_half.identity).max() < 0.1   # refined by its frames, not re-estimated


def test_profile_file_round_trip_and_damaged_files(first_half, tmp_path):
    path = tmp_path / "actor.npz"
    save_actor(first_half, path)
    loaded = load_actor(path)
    assert loaded.digest() == first_half.digest()
    np.testing.assert_array_equal(loaded.albedo, first_half.albedo)
    assert loaded.takes == first_half.takes and loaded.basis == first_half.basis
    with pytest.raises(FormatError, match="not found"):
        load_actor(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(FormatError, match="not a readable facecap actor profile"):
        load_actor(tmp_path / "junk.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"version": 1', '"version": 2'))
    np.savez(tmp_path / "v2.npz", **arrays)
    with pytest.raises(FormatError, match="version 2"):
        load_actor(tmp_path / "v2.npz")


def test_profile_refuses_another_tracking_rig(tiny_take, first_half):
    rig, take, _ = tiny_take
    config = tiny_config(take, True)
    calibration = load_calibration(take / "calibration.json")
    samples = photometric_samples(rig, config.exclude_materials)
    performer_start(first_half, calibration, rig, samples, config)                      # its own rig: accepted
    other = rig.replace(identity_deltas=1.5 * rig.identity_deltas)
    with pytest.raises(FacecapError, match="another tracking rig: the rig's neutral, faces or identity modes"):
        performer_start(first_half, calibration, other, samples, config)


def _turned(calibration: Calibration, name: str, degrees: float) -> Calibration:
    """``calibration`` with camera ``name`` turned about its optical axis by ``degrees``."""
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, np.radians(degrees)], dtype=torch.float64)).numpy()
    cameras = tuple(dataclasses.replace(c, R=turn @ c.R, t=turn @ c.t) if c.name == name else c
                    for c in calibration.cameras)
    return dataclasses.replace(calibration, cameras=cameras)


def test_detector_offsets_transfer_to_the_cameras_they_were_measured_with_only(tiny_take, first_half):
    """A take with the profile's cameras starts from its offsets; one whose camera is turned by more than the
    tolerance has the offsets measured again (the plan's short keyframe stage), and so does one whose landmarks
    come from a file (which has no offsets to remove)."""
    rig, take, _ = tiny_take
    calibration = load_calibration(take / "calibration.json")
    L = len(rig.landmark_vertices)
    offsets = np.random.default_rng(2).normal(0, 3, (3, L, 2)).astype(np.float32)
    profile = dataclasses.replace(first_half, detector_offsets=offsets, offset_takes=np.ones(3, np.int64))
    detected = dataclasses.replace(tiny_config(take, True), landmarks=LandmarkConfig(model_path="face_landmarker.task"))
    samples = photometric_samples(rig, detected.exclude_materials)
    same = performer_start(profile, calibration, rig, samples, detected)
    np.testing.assert_array_equal(same.offsets, offsets)
    assert same.plan == ProfileStart(detector_offsets=True)
    slightly = performer_start(profile, _turned(calibration, "cam01", 0.5), rig, samples, detected)
    assert slightly.offsets is not None
    turned = performer_start(profile, _turned(calibration, "cam01", 2.0), rig, samples, detected)
    assert turned.offsets is None and turned.plan == ProfileStart(detector_offsets=False)
    subset = performer_start(profile, calibration.subset(["cam02", "cam00"]), rig, samples, detected)
    np.testing.assert_array_equal(subset.offsets, offsets[[2, 0]])
    from_file = performer_start(profile, calibration, rig, samples, tiny_config(take, True))
    assert from_file.offsets is None


def test_adopt_performer_gives_the_state_the_profiles_evidence():
    """The identity's information and its information-form vector at the start's identity, the appearance, and
    albedo normal equations whose lighting and camera rows are empty."""
    gen = torch.Generator().manual_seed(0)
    T, K, I, N, C = 4, 3, 2, 5, 2
    start = FrameParams(torch.rand(T, K, generator=gen), torch.eye(3).expand(T, 3, 3).clone(), torch.zeros(T, 3),
                        torch.tensor([0.3, -0.2]))
    state = SequenceState.start(start, damping=0.1)
    A = torch.rand(I, I, generator=gen)
    info = A @ A.T + torch.eye(I)
    appearance = Appearance(torch.rand(N, 3, generator=gen), torch.rand(9, 3, generator=gen), torch.ones(C, 3),
                            torch.zeros(C, 3))
    evidence = AppearanceStats(torch.zeros(5, C, 3), torch.zeros(3, 9, 9), torch.zeros(3, 9),
                               appearance.albedo * 2.0, torch.full((N, 3), 2.0))
    offsets = np.ones((C, 7, 2))
    state.adopt_performer(info, appearance, evidence, offsets)
    torch.testing.assert_close(state.identity_eta, info @ torch.tensor([0.3, -0.2]))
    assert state.appearance is appearance and state.appearance_stats is evidence
    assert state.landmark_offsets is offsets


def test_takes_added_to_a_profile_add_their_evidence(tiny_take, first_half, tmp_path):
    """Frames 3..5 added to the profile of frames 0..2: two takes recorded, and the identity's information and the
    albedo's evidence only grow (each take's normal equations add to the ones before)."""
    rig, take, _ = tiny_take
    both = build_actor_profile([ProfileTake(take, frames=(3, 6))], rig, tiny_config(take, True), tmp_path,
                               start=first_half)
    assert [t["frames"] for t in both.takes] == [[0, 3], [3, 6]]
    grown = both.identity_information - first_half.identity_information
    assert np.linalg.eigvalsh((grown + grown.T) / 2).min() > -1e-6 * np.abs(grown).max()
    assert np.all(both.albedo_evidence >= first_half.albedo_evidence)
    assert (both.albedo_evidence > first_half.albedo_evidence).any()


def test_actor_cli_builds_shows_and_fits_from_a_profile(tiny_take, tmp_path, capsys):
    """`facecap actor build`, `actor show`, and `fit --actor`: the landmark initialisation starts from the profile's
    identity (a fit without the photometric stages reports it as it is)."""
    rig, take, _ = tiny_take
    rig_path = tmp_path / "rig.npz"
    save_rig(rig, rig_path)
    schedule = ["--set", "schedule.keyframes=2", "--set", "schedule.keyframe_scales=[1.0]",
                "--set", "schedule.keyframe_iterations=[3]"]
    landmarks = ["--set", f"landmarks.landmarks_file={take / 'landmarks.json'}"]
    assert main(["-q", "actor", "build", str(take), "--rig", str(rig_path), "-o", str(tmp_path / "anna"),
                 "--frames", "0:4", *landmarks, *schedule]) == 0
    profile = load_actor(tmp_path / "anna.npz")
    assert profile.takes[0]["keyframes"] == [0, 3]
    assert main(["actor", "show", str(tmp_path / "anna.npz")]) == 0
    shown = capsys.readouterr().out
    assert "2 keyframes" in shown and "identity: 5 coefficients" in shown
    assert main(["-q", "fit", str(take), "--rig", str(rig_path), "--out", str(tmp_path / "fit"), "--actor",
                 str(tmp_path / "anna.npz"), "--set", "photometric=false", *landmarks]) == 0
    report = load_animation_json(tmp_path / "fit" / "animation.json")
    assert report.num_frames == 6
    import json
    identity = json.loads((tmp_path / "fit" / "report.json").read_text())["identity"]
    np.testing.assert_allclose(identity, profile.identity)
    assert main(["-q", "fit", str(take), "--rig", str(rig_path), "--out", str(tmp_path / "bad"), "--actor",
                 str(tmp_path / "missing.npz"), *landmarks]) == 2
