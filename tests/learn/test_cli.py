"""End to end: facecap train-init (tiny), resuming it, and facecap preview's exports."""

import json

import numpy as np

from facecap.animation import load_animation_json
from facecap.cli import main
from facecap.learn.modelfile import load_init_model
from facecap.rig import build_demo_head
from tests.learn.conftest import TINY_TRAINING


def test_train_init_writes_a_model_its_curves_and_a_checkpoint(tiny_model):
    _, model_path, work = tiny_model
    model = load_init_model(model_path)
    assert model.shape_names == build_demo_head().shape_names and model.config.crop_size == 32
    history = json.loads((work / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all(np.isfinite(h["val_weight_mae"]) for h in history)
    for name in ("validation.png", "checkpoint.pt"):
        assert (work / name).is_file(), name
    report = json.loads((model_path.parent / "init_model_report.json").read_text())
    assert report["history"] == history and report["run"]["command_name"] == "train-init"
    assert report["run"]["config"]["train"]["epochs"] == 2
    assert sorted(report["run"]["files"]) == ["init_model.pt", "init_model_config.yaml", "init_model_report.json",
                                              "init_model_validation.png"]
    for name in report["run"]["files"]:
        assert (model_path.parent / name).is_file(), name
    assert not list(model_path.parent.glob(".*partial*"))


def test_train_init_resumes_from_its_checkpoint(tiny_model, caplog):
    rig_path, model_path, work = tiny_model
    caplog.set_level("INFO")
    args = ["train-init", "--rig", str(rig_path), "-o", str(model_path)]
    assert main([*args, *(x for item in TINY_TRAINING for x in ("--set", item))]) == 0
    assert "resuming" in caplog.text and "rendering" not in caplog.text
    assert len(json.loads((work / "history.json").read_text())) == 2


def test_train_init_reports_a_rig_without_landmarks(tmp_path, capsys):
    from facecap.rig import save_rig
    save_rig(build_demo_head().replace(landmark_vertices=None, landmark_scheme=""), tmp_path / "rig.npz")
    code = main(["train-init", "--rig", str(tmp_path / "rig.npz"), "-o", str(tmp_path / "m.pt"), "--set",
                 "data.samples=2"])
    assert code == 2 and "landmark" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_dir()) == ["rig.npz"]      # nothing published


def test_preview_writes_the_fits_exports(tiny_model, demo_take, tmp_path):
    rig_path, model_path, _ = tiny_model
    rig, take, _ = demo_take
    landmarks = f"landmarks.landmarks_file={take / 'landmarks.json'}"
    for boxes in ("track", "landmarks"):
        out = tmp_path / boxes
        assert main(["preview", str(take), "--model", str(model_path), "--rig", str(rig_path), "-o", str(out),
                     "--set", landmarks, "--set", f"boxes={boxes}", "--set", "batch_frames=4"]) == 0
        anim = load_animation_json(out / "animation.json")
        assert anim.num_frames == 6 and anim.shape_names == rig.shape_names
        assert anim.weights.min() >= 0 and anim.weights.max() <= 1
        report = json.loads((out / "preview.json").read_text())
        assert report["frames"] == 6 and report["frames_per_second"] > 0 and report["interpolated_frames"] == []
        run = json.loads((out / "run.json").read_text())
        assert run["complete"] and run["command_name"] == "preview"
        for name in ("animation.csv", "livelink.csv", "animation.glb", "weights.png", "meshes_head.npz",
                     "config.yaml"):
            assert (out / name).is_file() and name in run["files"], name


def test_preview_errors_are_clean(tiny_model, demo_take, tmp_path, capsys):
    _, model_path, _ = tiny_model
    _, take, _ = demo_take
    assert main(["preview", str(take), "--model", str(tmp_path / "none.pt"), "-o", str(tmp_path / "o")]) == 2
    assert "init model not found" in capsys.readouterr().err
    assert main(["preview", str(take), "--model", str(model_path), "-o", str(tmp_path / "o")]) == 2
    assert "landmarks.model_path" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert main(["preview", str(take), "--model", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "o")]) == 2
    assert "not a facecap init model" in capsys.readouterr().err


def test_preview_that_fails_leaves_the_previous_preview(tiny_model, demo_take, tmp_path):
    rig_path, model_path, _ = tiny_model
    _, take, _ = demo_take
    out = tmp_path / "preview"
    args = ["preview", str(take), "--model", str(model_path), "-o", str(out)]
    assert main([*args, "--set", f"landmarks.landmarks_file={take / 'landmarks.json'}"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main([*args, "--set", f"landmarks.landmarks_file={tmp_path / 'missing.json'}"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_fit_starts_from_the_network_with_init_model(tiny_model, demo_take, tmp_path, caplog):
    rig_path, model_path, _ = tiny_model
    _, take, _ = demo_take
    caplog.set_level("INFO")
    args = ["fit", str(take), "--rig", str(rig_path), "--set", f"landmarks.landmarks_file={take / 'landmarks.json'}",
            "--set", "photometric=false"]
    assert main([*args, "-o", str(tmp_path / "landmarks")]) == 0
    assert main([*args, "-o", str(tmp_path / "network"), "--set", f"init.model={model_path}"]) == 0
    assert "network start:" in caplog.text
    network = load_animation_json(tmp_path / "network" / "animation.json")
    landmarks = load_animation_json(tmp_path / "landmarks" / "animation.json")
    assert network.num_frames == landmarks.num_frames == 6
    assert np.abs(network.weights - landmarks.weights).max() > 1e-3                # the network's weights
    assert main([*args, "-o", str(tmp_path / "none"), "--set", f"init.model={tmp_path / 'none.pt'}"]) == 2
