"""The fit: landmark initialisation, analysis by synthesis, robustness, CLI, against ground truth."""

import dataclasses
import json

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from facecap.animation import Animation, load_animation_json
from facecap.cli import main
from facecap.fit import FitConfig, InitConfig, fit_take, initialise_from_landmarks
from facecap.fit.accuracy import animation_accuracy, true_identity
from facecap.fit.config import LandmarkConfig, ScheduleConfig
from facecap.fit.linearise import charbonnier, eliminate_albedo
from facecap.fit.optimize import second_difference_gram
from facecap.fit.qa import grid_layout
from facecap.fit.result import write_fit_report
from facecap.rig import build_demo_head, load_rig
from facecap.synth.take import SynthConfig
from facecap.take.landmarks import load_landmarks, save_landmarks
from tests.conftest import shared_path
from tests.fit.conftest import synthesize_tiny_take, tiny_config, tiny_model, tiny_observations


def test_photometric_fit_beats_landmark_init(tiny_take, tmp_path):
    rig, take, truth = tiny_take
    init = fit_take(take, take / "calibration.json", rig, tiny_config(take, False), tmp_path)
    fitted = fit_take(take, take / "calibration.json", rig, tiny_config(take, True), tmp_path)
    before = animation_accuracy(rig, init.animation, truth)
    after = animation_accuracy(rig, fitted.animation, truth)
    print(f"landmark init: {before.summary()}\nphotometric:   {after.summary()}")
    assert after.vertex_error_mean_mm < 0.9 * before.vertex_error_mean_mm
    assert after.vertex_error_mean_mm < 1.0 and after.rotation_error_deg < 1.0
    assert fitted.animation.weights.min() >= 0 and fitted.animation.weights.max() <= 1
    assert np.median(fitted.landmark_error_px) < 2.0
    # Sensor noise is 2 grey levels; the fitted model must explain the frames down to a few more.
    assert np.all(fitted.photometric_rms < 8.0), fitted.photometric_rms
    video = imageio.get_reader(fitted.qa_video)
    first = video.get_data(0)
    video.close()
    ring = SynthConfig().ring                    # 3 cameras' tiles (frame with edges | difference) at half size
    h, w = ring.height // 2, ring.width // 2
    cols, rows, scale = grid_layout(3, (2 * w, h))
    assert first.shape == (rows * h, cols * 2 * w, 3) and scale == 1
    difference = first[:h, w:2 * w].astype(float) / 255                 # camera 0's render - frame
    agrees = difference.min(-1) > 0.85                                  # near white: within a few grey levels
    differs = np.abs(difference[..., 0] - difference[..., 2]) > 0.5     # saturated red or blue
    assert agrees.mean() > 0.05                  # the face is drawn...
    assert differs.sum() < 0.1 * agrees.sum()    # ...and looks like the frame


def test_frame_without_landmarks_is_interpolated_and_flagged(tiny_take, tmp_path):
    rig, take, truth = tiny_take
    landmarks = load_landmarks(take / "landmarks.json")
    confidence = landmarks.confidence.copy()
    confidence[2] = 0.0                          # every view of frame 2 failed
    save_landmarks(dataclasses.replace(landmarks, confidence=confidence), tmp_path / "lm.json")
    config = dataclasses.replace(tiny_config(take, False),
                                 landmarks=LandmarkConfig(landmarks_file=str(tmp_path / "lm.json")))
    result = fit_take(take, take / "calibration.json", rig, config, tmp_path)
    assert list(result.frame_ok) == [True, True, False, True, True, True]
    accuracy = animation_accuracy(rig, result.animation, truth)
    assert accuracy.rotation_error_max_deg < 2.0 and accuracy.translation_error_max_mm < 5.0


def test_fit_cli_writes_exports_and_report(tiny_take, tmp_path):
    rig, take, _ = tiny_take
    from facecap.rig import save_rig
    save_rig(rig, tmp_path / "rig.npz")
    out = tmp_path / "out"
    code = main(["fit", str(take), "--rig", str(tmp_path / "rig.npz"), "--out", str(out),
                 "--set", f"landmarks.landmarks_file={take / 'landmarks.json'}", "--set", "photometric=false"])
    assert code == 0
    anim = load_animation_json(out / "animation.json")
    assert anim.num_frames == 6 and anim.shape_names == rig.shape_names
    report = json.loads((out / "report.json").read_text())
    assert len(report["frames"]) == 6 and report["frames_per_second"] > 0
    for name in ("animation.csv", "livelink.csv", "weights.png", "config.yaml"):
        assert (out / name).is_file(), name


def test_fit_cli_errors_are_clean(tmp_path, capsys):
    code = main(["fit", str(tmp_path), "--rig", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "rig file not found" in capsys.readouterr().err
    code = main(["fit", str(tmp_path), "--rig", "x.npz", "--out", "o", "--set", "schedule.scales=fast"])
    assert code == 2


def test_landmark_init_on_dev_take_with_true_landmarks():
    base = shared_path("data", "takes", "dev_ict_4cam")
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    from facecap.camera import load_calibration
    calibration = load_calibration(base / "calibration.json")
    truth = load_animation_json(base / "ground_truth.json")
    landmarks = load_landmarks(base / "landmarks_gt.json").cameras(calibration.names)
    # The performer of this take is the rig's neutral: with the identity known (as after the
    # keyframe stage), the landmarks alone pose the head and find the expression well.
    init = initialise_from_landmarks(landmarks, calibration, rig.in_units("mm"), InitConfig(),
                                     identity=np.zeros(rig.num_identities))
    fit = Animation(rig.shape_names, init.weights, init.R, init.t, truth.fps, "mm")
    accuracy = animation_accuracy(rig, fit, truth)
    # For scale: all-zero weights at the true pose score 1.29 mm mean, 5.7 mm p95 (the baseline test below).
    assert accuracy.vertex_error_mean_mm < 0.4 and accuracy.vertex_error_p95_mm < 1.2
    assert accuracy.rotation_error_deg < 0.4 and accuracy.translation_error_mm < 0.6
    assert init.frame_ok.all() and np.array_equal(init.identity, np.zeros(rig.num_identities))


def test_loss_terms_analytic():
    r = torch.tensor([0.0, 3.0, -4.0])
    torch.testing.assert_close(charbonnier(r, 1.0), torch.sqrt(r * r + 1) - 1)
    x = torch.randn(9, 4, dtype=torch.float64)
    d2 = x[2:] - 2 * x[1:-1] + x[:-2]
    gram = second_difference_gram(9, x.dtype, x.device)
    torch.testing.assert_close((x * (gram @ x)).sum(), (d2 * d2).sum())
    line = torch.arange(9.0, dtype=torch.float64)[:, None] * torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    assert float((gram @ line).abs().max()) < 1e-12


def test_accuracy_scores_zero_weights_as_the_reference_baseline():
    """The scoring reproduces the reference figures of all-zero weights at the true pose on dev_ict_4cam,
    the baseline against which the project's accuracy targets were set."""
    base = shared_path("data", "takes", "dev_ict_4cam")
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    truth = load_animation_json(base / "ground_truth.json")
    zero = animation_accuracy(rig, dataclasses.replace(truth, weights=np.zeros_like(truth.weights)), truth)
    assert zero.weight_mae_all == pytest.approx(0.042, abs=5e-4)
    assert zero.weight_mae_active == pytest.approx(0.28, abs=5e-3)
    assert zero.vertex_error_mean_mm == pytest.approx(1.29, abs=5e-3)
    assert zero.vertex_error_p95_mm == pytest.approx(5.7, abs=0.05)


def test_true_identity_is_what_the_generator_recorded():
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    path = shared_path("data", "takes", "dev_ict_3cam_identity", "ground_truth.json")
    truth = load_animation_json(path)
    recorded = json.loads(path.read_text())["generator"]["identity_coefficients"]
    np.testing.assert_array_equal(true_identity(truth, rig), recorded)
    assert np.abs(recorded).max() > 0.1                              # this performer is not the rig
    unrecorded = dataclasses.replace(truth, extra={})
    np.testing.assert_array_equal(true_identity(unrecorded, rig), np.zeros(rig.num_identities))


def _linearised_tiny_take(tiny_take, config, sampler="vertex"):
    """The tiny take's frames 1 and 2 linearised near the truth, read by ``sampler``: (model, params,
    observations, visibility, appearance, linearisation)."""
    from facecap.fit.linearise import linearise
    from facecap.fit.optimize import initial_appearance, sample_visibility
    from facecap.fit.problem import FrameParams

    rig, take_dir, truth = tiny_take
    model = tiny_model(rig, take_dir, sampler)
    frames = np.array([1, 2])
    obs = tiny_observations(take_dir, frames, silhouettes=True)

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)
    rng = np.random.default_rng(1)
    p = FrameParams(f32(np.clip(truth.weights[frames] + rng.uniform(0.05, 0.1, truth.weights[frames].shape), 0, 1)),
                    f32(truth.R[frames]), f32(truth.t[frames]) + 0.3, torch.zeros(rig.num_identities))
    visible = sample_visibility(model, p)
    appearance = linearise(model, p, obs, visible, initial_appearance(model, p, obs, visible), None, config.loss,
                           3).appearance
    return model, p, obs, visible, appearance, linearise(model, p, obs, visible, appearance, None, config.loss, 0)


def _assert_gradient_matches_finite_differences(tiny_take, config, parameters, spread=0.0, sampler="vertex"):
    """The normal equations' gradient against central differences of the energy (appearance and the
    outline points held, as the optimiser holds them when it compares energies).

    ``parameters``: (name, index into the two frames' parameters and the identity (first frame, or identity), step).
    Each component may differ by 15 %, plus ``spread`` times the largest component.
    """
    from facecap.fit.linearise import linearise
    from facecap.fit.optimize import apply_step

    rig = tiny_take[0]
    model, p, obs, visible, appearance, lin = _linearised_tiny_take(tiny_take, config, sampler)
    assert lin.energy > 0
    P = rig.num_shapes + 6
    results = []
    for name, index, h in parameters:
        step = torch.zeros(2 * P + rig.num_identities, dtype=torch.float64)
        step[index] = h
        plus, minus = (linearise(model, apply_step(p, sign * step), obs, visible, appearance, None, config.loss, 0,
                                 held_outline=lin.outline).energy for sign in (1, -1))
        analytic = float(lin.grad[0, index] if index < P else lin.grad[:, index - P].sum())
        results.append((name, analytic, (plus - minus) / (2 * h)))
        print(f"{name}: analytic {analytic:.6g}, central difference {results[-1][2]:.6g}")
    largest = max(abs(numeric) for *_, numeric in results)
    for name, analytic, numeric in results:
        assert analytic == pytest.approx(numeric, rel=0.15, abs=spread * largest + 1e-6 * abs(lin.energy)), name


@pytest.mark.parametrize("correctives", [True, False])
def test_point_jacobian_columns_are_the_rigs_derivatives(correctives):
    """d(world position)/d(weights, rotation increment, translation, identity) of some vertices, against
    autograd through the rig, with the demo head's correctives (the weights' columns then depend on the
    weights) and without them."""
    from facecap.fit.linearise import corrective_slopes, point_jacobian_columns
    from facecap.fit.problem import FrameParams
    from facecap.geometry.rotations import axis_angle_to_matrix
    from facecap.rig.evaluate import TorchRig

    rig = build_demo_head()
    if not correctives:
        rig = dataclasses.replace(rig, corrective_keys=np.zeros((0, 4), np.int32),
                                  corrective_deltas=np.zeros((0, rig.num_vertices, 3)))
    assert bool(rig.num_correctives) == correctives and rig.num_identities
    index = torch.arange(0, rig.num_vertices, 97)
    rows = TorchRig.from_rig(rig, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)

    def normal(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)
    B = 2
    p = FrameParams(torch.rand(B, rig.num_shapes, generator=gen, dtype=torch.float64),
                    axis_angle_to_matrix(0.3 * normal(B, 3)), normal(B, 3), normal(rig.num_identities))
    X = rows.evaluate(p.weights, p.R, p.t, identity=p.identity)[:, index]
    A = point_jacobian_columns(rows, index, corrective_slopes(rows, p.weights), p, X)

    for b in range(B):
        def world(w, rotation, t, identity):
            R = axis_angle_to_matrix(rotation) @ p.R[b]
            return rows.evaluate(w[None], R[None], t[None], identity=identity)[0, index]
        args = (p.weights[b], torch.zeros(3, dtype=torch.float64), p.t[b], p.identity)
        expected = torch.cat(torch.autograd.functional.jacobian(world, args), -1)
        torch.testing.assert_close(A[b], expected)


@pytest.mark.parametrize("sampler, spread", [("vertex", 0.0), ("raster", 0.02)])
def test_gauss_newton_gradient_matches_finite_differences(tiny_take, sampler, spread):
    """Both samplers. The raster sampler sees half as many (point, view) pairs again as the point z-buffer,
    obliquely and near the outline, where the image's edges make the central difference that gives the image
    gradient (``GRADIENT_STEP_PX``) differ from the local derivative: its small jawOpen component may then
    differ by 2 % of the largest (measured: 0.8 %; on the pairs both samplers see it agrees within 7 %)."""
    rig = tiny_take[0]
    K, P = rig.num_shapes, rig.num_shapes + 6
    _assert_gradient_matches_finite_differences(tiny_take, tiny_config(tiny_take[1], True), [
        ("jawOpen", rig.shape_index("jawOpen"), 1e-2), ("rotation y", K + 1, 1e-3), ("translation x", K + 3, 0.05),
        ("identity 0", 2 * P, 0.05)], spread, sampler)


def test_silhouette_gradient_matches_finite_differences(tiny_take):
    """The outline term alone: the silhouette is found in every view, and its gradient is right up to
    the outline points' normal equations going to their edges' nearer ends (measured: up to 9 % of
    the largest component, rotation y)."""
    rig, take = tiny_take[:2]
    config = tiny_config(take, True)
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, photometric=1e-9, landmark=0.0,
                                                                  silhouette=1.0))
    obs, lin = _linearised_tiny_take(tiny_take, config)[2::3]
    assert bool(obs.silhouette_found.all())
    assert torch.bincount(lin.outline.camera, minlength=obs.images.shape[1]).min() > 100   # in every view
    K, P = rig.num_shapes, rig.num_shapes + 6
    _assert_gradient_matches_finite_differences(tiny_take, config, [
        ("jawOpen", rig.shape_index("jawOpen"), 1e-3), *((f"rotation {a}", K + i, 1e-3) for i, a in enumerate("xyz")),
        *((f"translation {a}", K + 3 + i, 1e-3) for i, a in enumerate("xyz")), ("identity 0", 2 * P, 0.05)],
        spread=0.1)


def test_raster_sampler_fits_the_tiny_take_as_well_as_the_vertex_sampler(tiny_take, tmp_path):
    rig, take, truth = tiny_take
    accuracy, rms = {}, {}
    for sampler in ("vertex", "raster"):
        config = dataclasses.replace(tiny_config(take, True), sampler=sampler, qa_video=False)
        result = fit_take(take, take / "calibration.json", rig, config, tmp_path / sampler)
        accuracy[sampler], rms[sampler] = animation_accuracy(rig, result.animation, truth), result.photometric_rms
        print(f"{sampler}: {accuracy[sampler].summary()}, photometric RMS {np.round(rms[sampler], 2)}")
    raster, vertex = accuracy["raster"], accuracy["vertex"]
    assert raster.weight_mae_all <= 1.1 * vertex.weight_mae_all
    assert raster.vertex_error_mean_mm <= 1.1 * vertex.vertex_error_mean_mm < 0.3
    assert raster.rotation_error_deg < 0.2 and raster.translation_error_mm < 0.5
    assert np.all(rms["raster"] < 8.0)               # sensor noise is 2 grey levels


@pytest.mark.slow
def test_keyframes_recover_identity_and_pose_on_dev_identity_take(tmp_path):
    """The independent renderer's take whose performer is not the rig: the keyframe stage alone
    (true landmarks, so the detector is out of the error budget) must find identity and pose."""
    base = shared_path("data", "takes", "dev_ict_3cam_identity")
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    truth = load_animation_json(base / "ground_truth.json")
    identity = true_identity(truth, rig)
    config = FitConfig(device="cpu", qa_video=False,
                       landmarks=LandmarkConfig(landmarks_file=str(base / "landmarks_gt.json")),
                       schedule=ScheduleConfig(passes=0))
    result = fit_take(base, base / "calibration.json", rig, config, tmp_path)
    keyframes = np.unique(np.linspace(0, truth.num_frames - 1, config.schedule.keyframes).round().astype(int))

    def at(anim):
        return Animation(anim.shape_names, anim.weights[keyframes], anim.R[keyframes], anim.t[keyframes], anim.fps,
                         "mm")
    accuracy = animation_accuracy(rig, at(result.animation), at(truth), identity=identity)
    print(accuracy.summary(), "identity error", np.abs(result.identity - identity).mean())
    # Bounds near the project's targets (0.3 mm, 0.2 deg, 0.5 mm; tools/bench_fit.py), far inside the landmark
    # initialisation's error on this take.
    assert accuracy.vertex_error_mean_mm < 0.4 and accuracy.vertex_error_p95_mm < 1.0
    assert accuracy.rotation_error_deg < 0.3 and accuracy.translation_error_mm < 0.6
    assert np.abs(result.identity - identity).mean() < 0.3 * np.abs(identity).mean()


def test_neutral_correction_for_a_rig_without_identity_modes(tmp_path):
    """A performer whose neutral differs smoothly from a rig that has no identity modes: the smooth
    neutral correction must explain the difference, so the expression comes out cleaner."""
    head = build_demo_head()
    bare = head.replace(identity_deltas=np.zeros((0, head.num_vertices, 3)))
    performer = bare.replace(neutral=head.neutral + 2.0 * head.identity_deltas[0] - 1.5 * head.identity_deltas[1])
    take, truth = synthesize_tiny_take(performer, tmp_path)
    scores = {}
    for degree in (0, 2):
        config = dataclasses.replace(tiny_config(take, True), neutral_degree=degree, qa_video=False)
        # The correction alone: with the silhouette term on, its scale-like modes trade with the depth,
        # an open interaction (docs/decisions.md, the silhouette term).
        config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, silhouette=0.0))
        result = fit_take(take, take / "calibration.json", bare, config, tmp_path / f"fit{degree}")
        assert len(result.identity) == (24 if degree else 0)
        scores[degree] = animation_accuracy(performer, result.animation, truth)   # the performer's true neutral
        print(degree, scores[degree].summary())
    # Without the correction the expression absorbs the face shape, which shows as false activations.
    assert scores[2].weight_mae_all < 0.6 * scores[0].weight_mae_all
    assert scores[2].weight_mae_active < scores[0].weight_mae_active
    assert scores[2].vertex_error_mean_mm < 0.9 * scores[0].vertex_error_mean_mm


def test_mesh_prior_pulls_the_fit_to_the_prior_solution(tiny_take):
    """With a strong mesh prior Gauss-Newton lands on the prior solution's surface; without it, it does not."""
    from facecap.fit.optimize import optimise_batch
    from facecap.fit.problem import FrameParams, SequenceState

    rig, take_dir, truth = tiny_take
    model = tiny_model(rig, take_dir)
    frames = np.array([0, 1, 2])
    obs = tiny_observations(take_dir, frames, silhouettes=False)

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)
    prior = FrameParams(f32(truth.weights), f32(truth.R), f32(truth.t) + torch.tensor([2.0, -1.0, 1.5]),
                        torch.zeros(rig.num_identities))            # the true expression, 2.7 mm away
    distances = {}
    for weight in (0.0, 100.0):
        loss = dataclasses.replace(tiny_config(take_dir, True).loss, mesh_prior=weight)
        state = SequenceState(weights=f32(truth.weights), R=f32(truth.R), t=f32(truth.t),
                              identity=torch.zeros(rig.num_identities), prior=prior)
        p = optimise_batch(model, state, frames, obs, loss, 8).params
        fitted = model.rows.evaluate(p.weights, p.R, p.t, identity=p.identity)
        target = model.rows.evaluate(prior.weights[:3], prior.R[:3], prior.t[:3], identity=prior.identity)
        distances[weight] = float((fitted - target).norm(dim=-1).mean())
    assert distances[100.0] < 0.2 < distances[0.0], distances


def test_pixels_per_unit_is_focal_length_over_depth():
    """Heads centred on a camera ring's target, however turned, are at the ring's distance from every
    camera: f / distance pixels per unit, with f from the ring's field of view."""
    from scipy.spatial.transform import Rotation

    from facecap.camera.torch_camera import CameraTensors
    from facecap.fit.appearance import photometric_samples
    from facecap.fit.problem import FitModel
    from facecap.synth.cameras import make_camera_ring

    rig = build_demo_head().in_units("mm")
    ring = make_camera_ring(3, (320, 240), distance=700.0, target=(10.0, 20.0, 30.0), fov_deg=30.0)
    model = FitModel.build(rig, CameraTensors.from_calibration(ring), photometric_samples(rig, []), "cpu")
    R = torch.as_tensor(Rotation.from_rotvec([[0.0, 0.0, 0.0], [0.2, -0.4, 0.1]]).as_matrix(), dtype=torch.float32)
    t = torch.tensor([10.0, 20.0, 30.0]) - R @ model.head_centre
    assert model.pixels_per_unit(R, t) == pytest.approx(120 / np.tan(np.radians(15)) / 700, rel=1e-5)


def test_sample_normals_need_only_the_triangles_around_the_samples():
    """The fit's sample normals come from the triangles with a sampled corner: the whole mesh's normals there."""
    from facecap.camera.torch_camera import CameraTensors
    from facecap.fit.appearance import photometric_samples
    from facecap.fit.problem import FitModel
    from facecap.render.shading import vertex_normals
    from facecap.synth.cameras import make_camera_ring

    rig = build_demo_head().in_units("mm")
    ring = make_camera_ring(2, (320, 240), distance=700.0, target=(0.0, 0.0, 0.0), fov_deg=30.0)
    model = FitModel.build(rig, CameraTensors.from_calibration(ring), photometric_samples(rig, ["mouth_interior"]),
                           "cpu")
    assert len(model.sample_faces) < len(model.faces)
    weights = torch.rand(2, rig.num_shapes, generator=torch.Generator().manual_seed(0))
    verts = model.rig.evaluate(weights, torch.eye(3).expand(2, 3, 3), torch.zeros(2, 3))
    torch.testing.assert_close(model.sample_normals(verts), vertex_normals(verts, model.faces)[:, model.samples])


def test_l1_scales_with_the_faces_pixels_per_millimetre(tiny_take, tmp_path):
    """The fit weighs l1 by the face's pixels per millimetre: the tiny take's ring (320x240, 30° field of
    view, 700 mm away) images the head at 0.64 px/mm. The report records the weights the stages used."""
    rig, take, _ = tiny_take
    config = dataclasses.replace(tiny_config(take, True), qa_video=False)
    result = fit_take(take, take / "calibration.json", rig, config, tmp_path)
    l1 = result.effective_loss.l1
    assert l1 == pytest.approx(config.loss.l1 * 120 / np.tan(np.radians(15)) / 700, rel=0.03)
    write_fit_report(result, config, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["effective_loss"]["l1"] == pytest.approx(l1) and report["config"]["loss"]["l1"] == config.loss.l1


def test_photometric_term_is_the_same_at_any_brightness(tiny_take):
    """A face half as bright (its images, albedo and camera offsets halved) gives the same energy and
    normal equations once the term is measured relative to its brightness."""
    from facecap.fit.linearise import linearise
    from facecap.fit.optimize import face_brightness
    from facecap.fit.take_loss import scale_loss

    config = tiny_config(tiny_take[1], True)
    model, p, obs, visible, appearance, _ = _linearised_tiny_take(tiny_take, config)
    dark_obs = dataclasses.replace(obs, images=obs.images * 0.5)
    dark_appearance = dataclasses.replace(appearance, albedo=appearance.albedo * 0.5, bias=appearance.bias * 0.5)
    brightness = face_brightness(model, p, obs.images)
    assert 0.05 < brightness < 0.95
    assert face_brightness(model, p, dark_obs.images) == pytest.approx(0.5 * brightness, rel=1e-6)
    def scaled(b):
        return scale_loss(config.loss, 1.0, b, detected_landmarks=False).weights
    bright = linearise(model, p, obs, visible, appearance, None, scaled(brightness), 0)
    dark = linearise(model, p, dark_obs, visible, dark_appearance, None, scaled(0.5 * brightness), 0)
    assert dark.terms["photometric"] == pytest.approx(bright.terms["photometric"], rel=1e-4)
    torch.testing.assert_close(dark.JtJ, bright.JtJ, rtol=1e-3, atol=1e-6 * float(bright.JtJ.abs().max()))
    torch.testing.assert_close(dark.grad, bright.grad, rtol=1e-3, atol=1e-5 * float(bright.grad.abs().max()))
    unscaled = linearise(model, p, dark_obs, visible, dark_appearance, None, config.loss, 0)
    assert unscaled.terms["photometric"] < 0.7 * bright.terms["photometric"]


def test_fit_weighs_colour_differences_by_the_takes_brightness(tiny_take, tmp_path, monkeypatch):
    """A take seen at half the brightness is fitted with half the Charbonnier scale and twice the weight."""
    import facecap.fit.feed as feed

    rig, take, _ = tiny_take
    config = dataclasses.replace(tiny_config(take, True), qa_video=False, schedule=dataclasses.replace(
        tiny_config(take, True).schedule, keyframe_iterations=[0, 0], iterations=[0, 0]))
    used = []
    for factor in (1.0, 0.5):
        to_device = feed.frames_to_device
        monkeypatch.setattr(feed, "frames_to_device", lambda stored, device: to_device(stored, device) * factor)
        used.append(fit_take(take, take / "calibration.json", rig, config, tmp_path / str(factor)).effective_loss)
        monkeypatch.undo()
    bright, dark = used
    assert dark.photometric_eps == pytest.approx(0.5 * bright.photometric_eps, rel=0.02)
    assert dark.photometric == pytest.approx(2 * bright.photometric, rel=0.02)


def test_sparsity_penalty_is_l1_at_zero_and_log_sum_beyond():
    """The log-sum penalty's gradient matches central differences, its slope is l1's at 0 and half
    of it at w = s, and without a scale it is plain l1."""
    from facecap.fit.optimize import sparsity_penalty

    w = torch.tensor([[0.0, 0.05, 0.3, 0.9]], dtype=torch.float64)
    energy, grad = sparsity_penalty(w, 0.2, 0.3)
    h = 1e-6
    for k in range(1, 4):
        step = torch.zeros_like(w)
        step[0, k] = h
        fd = (sparsity_penalty(w + step, 0.2, 0.3)[0] - sparsity_penalty(w - step, 0.2, 0.3)[0]) / (2 * h)
        assert grad[0, k].item() == pytest.approx(fd, rel=1e-6)
    assert grad[0, 0].item() == pytest.approx(0.2) and grad[0, 2].item() == pytest.approx(0.1)
    assert energy == pytest.approx(0.2 * 0.3 * np.log(1 + w.numpy() / 0.3).sum())
    l1_energy, l1_grad = sparsity_penalty(w, 0.2, 0.0)
    assert l1_energy == pytest.approx(0.2 * 1.25) and torch.all(l1_grad == 0.2)


def test_sparsity_penalty_takes_a_slope_per_weight():
    """A slope per weight: the weights given 0 add neither energy nor gradient, the others are as with a
    common slope."""
    from facecap.fit.optimize import sparsity_penalty

    w = torch.tensor([[0.1, 0.4], [0.7, 0.0]], dtype=torch.float64)
    slope = torch.tensor([[0.2, 0.0], [0.2, 0.0]], dtype=torch.float64)
    for scale in (0.3, 0.0):
        energy, grad = sparsity_penalty(w, slope, scale)
        common_energy, common_grad = sparsity_penalty(w[:, :1], 0.2, scale)
        assert energy == pytest.approx(common_energy)
        torch.testing.assert_close(grad[:, :1], common_grad)
        assert torch.all(grad[:, 1] == 0)


def test_freed_from_prior_keeps_what_an_off_shape_could_stand_in_for():
    """From the columns of a data Jacobian: an on weight is freed unless an off shape's column is nearly
    parallel to its own (|cosine| above the bound, either sign); two on shapes that look alike are both
    freed; the pose columns after the weights play no part."""
    from facecap.fit.optimize import freed_from_prior

    gen = torch.Generator().manual_seed(5)
    a = torch.randn(200, generator=gen, dtype=torch.float64)
    b = -(a + 0.3 * torch.randn(200, generator=gen, dtype=torch.float64))       # |cos(a, b)| about 0.96
    c = torch.randn(200, generator=gen, dtype=torch.float64)
    c = c - (c @ a) / (a @ a) * a                                                 # orthogonal to a
    pose = a + 0.01 * c                                                           # parallel to a, not a weight
    J = torch.stack([a, b, c, pose], 1)
    JtJ = (J.T @ J).expand(2, 4, 4)
    cosine = abs(float(a @ b) / float(a.norm() * b.norm()))
    assert 0.9 < cosine < 0.99
    on = torch.tensor([[True, False, True], [True, True, False]])
    assert freed_from_prior(on, JtJ, 0.8).tolist() == [[False, False, True], [True, True, False]]
    assert freed_from_prior(on, JtJ, 0.995).tolist() == on.tolist()


def test_albedo_elimination_is_the_schur_complement():
    """The per-frame and cross-frame terms equal the explicit Schur complement of the albedos."""
    gen = torch.Generator().manual_seed(3)
    B = 4
    h = torch.rand(B, 1, 3, generator=gen, dtype=torch.float64)
    tie = torch.rand(B, 1, 3, generator=gen, dtype=torch.float64)
    u = torch.randn(B, 1, 3, 3, generator=gen, dtype=torch.float64)
    held = torch.rand(1, 3, generator=gen, dtype=torch.float64)
    own, z, den = eliminate_albedo(h, tie, u, held)
    reduced = torch.block_diag(*own[:, 0]) - sum(torch.outer(z[:, 0, k].flatten(), z[:, 0, k].flatten()) / den[0, k]
                                                 for k in range(3))
    # Explicit: unknowns (dX_f [3B], α_fk [3B], a_k [3]); the dX-dX block is left at zero.
    n_x, n_alpha = 3 * B, 3 * B
    H = torch.zeros(n_x + n_alpha + 3, n_x + n_alpha + 3, dtype=torch.float64)
    for f in range(B):
        for k in range(3):
            alpha, a = n_x + 3 * f + k, n_x + n_alpha + k
            H[3 * f:3 * f + 3, alpha] = H[alpha, 3 * f:3 * f + 3] = u[f, 0, k]
            H[alpha, alpha] = h[f, 0, k] + tie[f, 0, k]
            H[alpha, a] = H[a, alpha] = -tie[f, 0, k]
            H[a, a] += tie[f, 0, k]
    H[n_x + n_alpha:, n_x + n_alpha:] += torch.diag(held[0])
    explicit = -H[:n_x, n_x:] @ torch.linalg.solve(H[n_x:, n_x:], H[n_x:, :n_x])
    torch.testing.assert_close(reduced, explicit)


def test_step_is_the_box_constrained_minimum_of_the_model():
    """The Gauss-Newton step minimises the quadratic model over the weights' [0, 1] box, as a general
    bound-constrained solver (L-BFGS-B) finds it, with weights starting on both bounds and inside."""
    from scipy.optimize import minimize

    from facecap.fit.optimize import box_constrained_step
    from facecap.fit.problem import POSE_PARAMS, FrameParams

    gen = torch.Generator().manual_seed(5)
    B, K, I = 3, 6, 2
    Pf = K + POSE_PARAMS
    n = B * Pf + I
    M = torch.randn(n, n, generator=gen, dtype=torch.float64)
    H = M @ M.T / n + 0.05 * torch.eye(n, dtype=torch.float64)
    g = 3 * torch.randn(n, generator=gen, dtype=torch.float64)
    weights = torch.rand(B, K, generator=gen)
    weights[:, :2], weights[:, 2] = 0.0, 1.0
    p = FrameParams(weights, torch.eye(3).expand(B, 3, 3), torch.zeros(B, 3), torch.zeros(I))
    step = box_constrained_step(H, g, p, damping=0.0).numpy()

    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    w = weights.double().numpy()
    lower[:B * Pf].reshape(B, Pf)[:, :K], upper[:B * Pf].reshape(B, Pf)[:, :K] = -w, 1 - w
    Hn, gn = H.numpy(), g.numpy()
    best = minimize(lambda d: gn @ d + 0.5 * d @ Hn @ d, np.zeros(n), jac=lambda d: gn + Hn @ d, method="L-BFGS-B",
                    bounds=list(zip(lower, upper)), options=dict(ftol=1e-15, gtol=1e-12, maxiter=10000)).x
    assert np.all(step >= lower - 1e-12) and np.all(step <= upper + 1e-12)
    clamped = np.clip(np.linalg.solve(Hn, -gn), lower, upper)
    # Clamping the unconstrained step is far from the optimum here, so the comparison below discriminates.
    assert (gn @ clamped + 0.5 * clamped @ Hn @ clamped) > (gn @ best + 0.5 * best @ Hn @ best) + 1.0
    np.testing.assert_allclose(step, best, atol=1e-5)


def test_detector_offsets_measured_on_keyframes_are_removed(tiny_take):
    """A detector whose points sit a constant few px from the rig's landmarks, per camera: with the
    keyframes fitted, the offsets are measured and the corrected points are the true ones."""
    from facecap.camera import load_calibration
    from facecap.fit.problem import SequenceState
    from facecap.fit.stages import detector_offsets

    rig, take_dir, truth = tiny_take
    calibration = load_calibration(take_dir / "calibration.json")
    landmarks = load_landmarks(take_dir / "landmarks.json")
    offsets = np.random.default_rng(4).uniform(-6, 6, landmarks.points.shape[1:])          # [C, L, 2] px
    detected = dataclasses.replace(landmarks, points=landmarks.points + offsets)
    state = SequenceState(*(torch.as_tensor(a, dtype=torch.float32) for a in
                            (truth.weights, truth.R, truth.t, np.zeros(rig.num_identities))))
    measured = detector_offsets(detected, state, np.array([0, 2, 5]), calibration, rig.in_units(calibration.units))
    corrected = dataclasses.replace(detected, points=detected.points - measured)
    seen = landmarks.confidence > 0
    before = np.linalg.norm(detected.points - landmarks.points, axis=-1)[seen]
    after = np.linalg.norm(corrected.points - landmarks.points, axis=-1)[seen]
    assert np.median(before) > 4.0
    assert np.median(after) < 1.5           # the stand-in detections' own noise is 1 px


def test_detected_landmarks_weigh_landmark_detected(tiny_take, tmp_path, monkeypatch):
    """A detector's points only initialise: the photometric stages weigh them by ``loss.landmark_detected``;
    a landmarks file's points weigh ``loss.landmark``."""
    import facecap.fit.pipeline as pipeline

    rig, take, _ = tiny_take
    config = tiny_config(take, True)
    from_file = dataclasses.replace(config, qa_video=False,
                                    loss=dataclasses.replace(config.loss, landmark_detected=0.25),
                                    schedule=dataclasses.replace(config.schedule, keyframe_iterations=[0, 0],
                                                                 iterations=[0, 0]))
    result = fit_take(take, take / "calibration.json", rig, from_file, tmp_path)
    assert result.effective_loss.landmark == from_file.loss.landmark

    detections = load_landmarks(take / "landmarks.json")
    monkeypatch.setattr(pipeline, "load_fit_landmarks", lambda *args: detections)
    detected = dataclasses.replace(from_file, landmarks=LandmarkConfig(model_path="detector.task"))
    assert fit_take(take, take / "calibration.json", rig, detected, tmp_path).effective_loss.landmark == 0.25


def test_keyframe_corrections_carry_to_the_frames_between():
    """A landmark init off by a rigid motion and weight offsets that change linearly over the take:
    corrected by the fitted keyframes' differences, every frame between them is right."""
    from scipy.spatial.transform import Rotation

    from facecap.fit.init import Initialisation
    from facecap.fit.problem import SequenceState
    from facecap.fit.stages import keyframe_corrected

    rng = np.random.default_rng(7)
    T, K = 13, 5
    s = np.linspace(0, 1, T)
    true_W = rng.uniform(0.2, 0.8, (T, K))
    true_R = Rotation.from_rotvec(rng.normal(0, 0.2, (T, 3))).as_matrix()
    true_t = rng.normal(0, 50, (T, 3))
    # The init's error: a fixed rotation of the head about the world origin, a translation that
    # drifts linearly, and weight offsets that drift linearly.
    error_R = Rotation.from_rotvec([0.03, -0.02, 0.05]).as_matrix()
    error_t = np.array([2.0, -1.0, 3.0]) + s[:, None] * np.array([-4.0, 2.0, 1.0])
    error_W = 0.1 - 0.2 * s[:, None] * np.linspace(-1, 1, K)
    init = Initialisation(weights=true_W - error_W, R=error_R.T @ true_R,
                          t=np.einsum("ij,tj->ti", error_R.T, true_t - error_t), identity=np.zeros(0),
                          landmarks_3d=np.zeros((T, 0, 3)), valid=np.zeros((T, 0), bool),
                          frame_ok=np.ones(T, bool), residual_mm=np.zeros(T))
    fitted = SequenceState(*(torch.as_tensor(a) for a in (true_W, true_R, true_t, np.zeros(0))))
    keyframes = np.array([0, 4, 9, 12])
    W, R, t = keyframe_corrected(init, fitted, keyframes)
    assert np.abs(init.weights - true_W).max() > 0.09 and np.abs(init.t - true_t).max() > 3   # the init is off
    np.testing.assert_allclose(W, true_W, atol=1e-9)
    np.testing.assert_allclose(R, true_R, atol=1e-9)
    np.testing.assert_allclose(t, true_t, atol=1e-9)


def test_default_exclusions_name_the_ict_rigs_eyeballs():
    """The defaults leave out the ICT rig's eyeballs and mouth parts by name: a misspelt name would
    silently sample them again."""
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    excluded = set(FitConfig().exclude_materials)
    assert {"M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight", "M_Teeth", "M_GumsTongue"} <= excluded
    assert excluded - {"mouth_interior"} <= set(rig.material_names)   # mouth_interior: the demo head's


@pytest.mark.slow
@pytest.mark.parametrize("take, bounds", [
    # Bounds: vertex mean / p95 mm, rotation deg, translation mm, all-entries weight MAE, each a margin above
    # what the default fit reaches (the README's benchmark table; docs/decisions.md for what moved them).
    ("dev_ict_4cam", (0.22, 0.8, 0.06, 0.1, 0.0135)),
    # The performer is not the rig: the identity must be found as well.
    ("dev_ict_3cam_identity", (0.15, 0.32, 0.1, 0.13, 0.006)),
])
def test_fit_with_mediapipe_landmarks_on_dev_take(tmp_path, take, bounds):
    """Normal use: MediaPipe's own detections, whose points sit millimetres from the rig's landmarks.
    Keyframes fitted by photometry, the detector's offsets removed, a re-init, then two sweeps by
    photometry (3-6 min a take)."""
    pytest.importorskip("mediapipe")
    base = shared_path("data", "takes", take)
    model = shared_path("models", "face_landmarker.task")
    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    truth = load_animation_json(base / "ground_truth.json")
    identity = true_identity(truth, rig)
    config = FitConfig(device="cpu", qa_video=False, landmarks=LandmarkConfig(model_path=str(model)))
    result = fit_take(base, base / "calibration.json", rig, config, tmp_path)
    accuracy = animation_accuracy(rig, result.animation, truth, identity=identity)
    print(accuracy.summary())
    mean_mm, p95_mm, rotation_deg, translation_mm, weight_mae = bounds
    assert accuracy.vertex_error_mean_mm < mean_mm and accuracy.vertex_error_p95_mm < p95_mm
    assert accuracy.rotation_error_deg < rotation_deg and accuracy.translation_error_mm < translation_mm
    assert accuracy.weight_mae_all < weight_mae


def test_evidence_sees_a_duplicated_shape_as_undetermined(tiny_take):
    """Two copies of jawOpen explain the same pixels: with the other free, neither keeps any of its
    curvature, while jawOpen alone keeps a share (2 % here: the demo head's mouth shapes overlap)."""
    from facecap.fit.problem import SequenceState
    from facecap.testing.evidence import evidence_at

    rig, take_dir, truth = tiny_take
    frames = np.array([0, 2, 4])
    obs = tiny_observations(take_dir, frames, silhouettes=True)
    jaw = rig.shape_index("jawOpen")
    doubled = dataclasses.replace(rig, shape_names=(*rig.shape_names, "jawOpen copy"),
                                  shape_deltas=np.concatenate([rig.shape_deltas, rig.shape_deltas[jaw:jaw + 1]]))
    config = tiny_config(take_dir, True)
    kept = {}
    for name, r in (("rig", rig), ("doubled", doubled)):
        weights = np.concatenate([truth.weights, np.full((truth.num_frames, r.num_shapes - rig.num_shapes), 0.1)], 1)
        weights[:, jaw] = 0.1
        model = tiny_model(r, take_dir)
        state = SequenceState(weights=torch.as_tensor(weights, dtype=torch.float32),
                              R=torch.as_tensor(truth.R, dtype=torch.float32),
                              t=torch.as_tensor(truth.t, dtype=torch.float32), identity=torch.zeros(r.num_identities))
        evidence = evidence_at(model, state, frames, obs, config.loss)
        assert np.all(evidence.effective <= evidence.own * (1 + 1e-6)), name
        kept[name] = evidence.kept
    assert kept["rig"][jaw] > 1e-3
    assert kept["doubled"][jaw] < 1e-6 and kept["doubled"][-1] < 1e-6


def test_fit_part_of_a_take_numbers_frames_as_the_take(tiny_take, tmp_path):
    """--frames 2:5 fits take frames 2, 3 and 4 alone: the animation numbers them as the take does, and they
    are what a fit of the whole take gives there to within the init's own spread (the landmarks of those
    frames only)."""
    rig, take, truth = tiny_take
    rig_path = tmp_path / "rig.npz"
    from facecap.rig import save_rig
    save_rig(rig, rig_path)
    args = ["-q", "fit", str(take), "--rig", str(rig_path), "--set", "photometric=false", "--set",
            f"landmarks.landmarks_file={take / 'landmarks.json'}"]
    assert main(args + ["--out", str(tmp_path / "part"), "--frames", "2:5"]) == 0
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    part = load_animation_json(tmp_path / "part" / "animation.json")
    whole = load_animation_json(tmp_path / "whole" / "animation.json")
    assert part.frame_numbers.tolist() == [2, 3, 4]
    np.testing.assert_allclose(part.times, [2 / part.fps, 3 / part.fps, 4 / part.fps])
    np.testing.assert_allclose(part.t, whole.t[2:5], atol=1.0)          # mm: the same head, fitted alone
    assert main(args + ["--out", str(tmp_path / "bad"), "--frames", "4:9"]) == 2
