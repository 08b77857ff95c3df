"""Synthetic takes: camera ring, random performance, the written take (docs/formats.md §2) and `facecap synth`."""

import json

import cv2
import numpy as np
import pytest

from facecap.animation import Animation, load_animation_json, save_animation_json
from facecap.camera.model import load_calibration
from facecap.cli import main
from facecap.errors import ConfigError, FormatError
from facecap.rig import evaluate_rig, save_rig
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.synth import MotionConfig, SynthConfig, default_scene, make_camera_ring, random_animation, synthesize_take
from facecap.synth.take import RingConfig
from facecap.take import open_take

TINY_RING = RingConfig(num_cameras=2, width=64, height=48, fov_deg=40.0)


@pytest.fixture(scope="module")
def tiny_head():
    return build_demo_head(DemoHeadConfig(resolution=0.25, texture_size=32))


def test_camera_ring_looks_at_the_target():
    target = np.array([5.0, 20.0, 30.0])
    calib = make_camera_ring(5, (320, 240), 700.0, target=target, fov_deg=30.0)
    assert calib.names == [f"cam{i:02d}" for i in range(5)] and calib.units == "mm"
    for cam in calib.cameras:
        x = cam.R @ target + cam.t
        np.testing.assert_allclose(x[:2], 0, atol=1e-9)
        assert x[2] == pytest.approx(700.0)
        assert np.linalg.norm(cam.center - target) == pytest.approx(700.0)
        # World up (+y) appears upwards in the image (OpenCV y down).
        assert (cam.R @ np.array([0.0, 1.0, 0.0]))[1] < 0
    assert calib.cameras[0].K[1, 1] == pytest.approx(120.0 / np.tan(np.radians(15.0)))
    with pytest.raises(ConfigError, match="at least 1 camera"):
        make_camera_ring(0)


def test_random_animation_is_smooth_sparse_and_seeded():
    names = tuple(f"s{i}" for i in range(10))
    cfg = MotionConfig(num_frames=40, key_spacing=8, active_shapes=2, max_weight=0.7)
    anim = random_animation(names, cfg, np.random.default_rng(3))
    again = random_animation(names, cfg, np.random.default_rng(3))
    np.testing.assert_array_equal(anim.weights, again.weights)
    assert anim.weights.shape == (40, 10) and anim.weights.min() >= 0 and anim.weights.max() <= 0.7
    np.testing.assert_array_equal(anim.weights[0], 0)
    np.testing.assert_allclose(anim.R[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(anim.t[0], 0, atol=1e-12)
    assert np.abs(np.diff(anim.weights, 2, axis=0)).max() < 0.1          # eased, no jumps
    assert ((anim.weights[8::8] > 0).sum(1) <= 4).all()                    # sparse at keys
    np.testing.assert_allclose(anim.R @ anim.R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (40, 3, 3)), atol=1e-12)
    with pytest.raises(ConfigError, match="max_weight"):
        MotionConfig(max_weight=1.5)


def tiny_config(**changes) -> SynthConfig:
    base = dict(ring=TINY_RING, motion=MotionConfig(num_frames=3), supersample=2, backend="torch")
    base.update(changes)
    return SynthConfig(**base)


def test_synthesize_take_follows_formats(tmp_path, tiny_head):
    config = tiny_config()
    calib, anim = default_scene(tiny_head, config)
    out = synthesize_take(tiny_head, calib, anim, tmp_path / "take", config)
    assert sorted(p.name for p in (out / "cam00").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    take = json.loads((out / "take.json").read_text())
    assert take["frame_range"] == [0, 3] and take["fps"] == 30.0 and set(take["cameras"]) == {"cam00", "cam01"}
    loaded = load_calibration(out / "calibration.json")
    np.testing.assert_allclose(loaded.cameras[1].K, calib.cameras[1].K)
    truth = load_animation_json(out / "ground_truth.json")
    np.testing.assert_allclose(truth.weights, anim.weights)
    np.testing.assert_allclose(truth.t, anim.t)
    gen = truth.extra["generator"]
    assert gen["name"] == "facecap.synth" and set(gen["camera_gains"]) == {"cam00", "cam01"}
    assert len(gen["lighting"]["sh"]) == 9 and gen["noise_sigma"] == 2.0
    # The take reader (docs/formats.md §2) opens it, and the head covers the projection of its centroid.
    opened = open_take(out, loaded)
    assert opened.num_frames == 3 and opened.camera_names == ["cam00", "cam01"]
    head = tiny_head.in_units("mm")
    centre = evaluate_rig(head, anim.weights[1], R=anim.R[1], t=anim.t[1]).mean(0)
    for c, cam in enumerate(loaded.cameras):
        u, v = cv2.projectPoints(centre[None], cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0][0, 0]
        pixel = opened.frame(cam.name, 1)[int(round(v)), int(round(u))]
        assert np.abs(pixel - np.array(config.background)).max() > 0.1


def test_synthesize_mp4_and_guards(tmp_path, tiny_head):
    config = tiny_config(image_format="mp4", motion=MotionConfig(num_frames=2), supersample=1)
    calib, anim = default_scene(tiny_head, config)
    out = synthesize_take(tiny_head, calib, anim, tmp_path / "video_take", config)
    assert (out / "cam00.mp4").is_file() and open_take(out).num_frames == 2
    stranger = Animation(("notAShape",), np.zeros((2, 1)), anim.R, anim.t)
    with pytest.raises(FormatError, match="notAShape"):
        synthesize_take(tiny_head, calib, stranger, tmp_path / "bad", config)
    odd = tiny_config(image_format="mp4", ring=RingConfig(num_cameras=1, width=63, height=48))
    calib_odd, _ = default_scene(tiny_head, odd)
    with pytest.raises(ConfigError, match="even image sizes"):
        synthesize_take(tiny_head, calib_odd, anim, tmp_path / "odd", odd)
    with pytest.raises(ConfigError, match="supersample"):
        SynthConfig(supersample=0)


def test_cli_synth_end_to_end(tmp_path, tiny_head):
    rig_path = tmp_path / "head.npz"
    save_rig(tiny_head, rig_path)
    tiny = ["--set", "ring.num_cameras=2", "--set", "ring.width=48", "--set", "ring.height=36",
            "--set", "motion.num_frames=2", "--set", "supersample=1", "--set", "backend=torch"]
    assert main(["synth", "--out", str(tmp_path / "a"), "--rig", str(rig_path), *tiny]) == 0
    truth = load_animation_json(tmp_path / "a" / "ground_truth.json")
    assert (tmp_path / "a" / "config.yaml").is_file()
    # Feed the first take's cameras and performance back in, as files, with jpg frames.
    anim_path = tmp_path / "anim.json"
    save_animation_json(truth, anim_path)
    assert main(["synth", "--out", str(tmp_path / "b"), "--rig", str(rig_path), "--calibration",
                 str(tmp_path / "a" / "calibration.json"), "--animation", str(anim_path),
                 "--set", "image_format=jpg", "--set", "supersample=1", "--set", "backend=torch"]) == 0
    again = load_animation_json(tmp_path / "b" / "ground_truth.json")
    np.testing.assert_allclose(again.weights, truth.weights)
    assert len(list((tmp_path / "b" / "cam01").glob("*.jpg"))) == 2
    assert main(["synth", "--out", str(tmp_path / "c"), "--rig", str(rig_path), "--calibration",
                 str(tmp_path / "missing.json")]) == 2
