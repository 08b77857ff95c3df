"""``facecap calibrate`` end to end on tiny rendered images, ``convert``, and the all-or-nothing promise."""

import json
import os
import signal

import cv2
import numpy as np
import pytest

from facecap.calibrate.boards import load_board
from facecap.camera.model import load_calibration
from facecap.cli import main
from facecap.testing.board_images import SyntheticShoot, make_rig, random_board_poses, write_shoot


@pytest.fixture(scope="module")
def tiny_shoot(tmp_path_factory):
    rng = np.random.default_rng(3)
    board = load_board("opencv_9x6")
    truth = make_rig(2, rng, (320, 240), arc_deg=30)
    poses = random_board_poses(6, board, truth, rng, tilt_deg=35, distance=550, spread=30)
    folder = tmp_path_factory.mktemp("shoot")
    return truth, write_shoot(SyntheticShoot(truth, board, poses), folder, rng)


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--camera" in out and "opencv_9x6" in out and "intrinsics.fix_aspect" in out


def test_calibrate_end_to_end(tiny_shoot, tmp_path, capsys):
    truth, dirs = tiny_shoot
    out = tmp_path / "calib"
    code = main(["-q", "calibrate", "-c", f"left={dirs[0]}", "-c", f"right={dirs[1]}", "--board", "chessboard:9x6:25",
                 "--all-overlays", "--out", str(out)])
    assert code == 0
    calib = load_calibration(out / "calibration.json")
    assert calib.names == ["left", "right"] and calib.units == "mm"
    assert np.linalg.norm(calib["right"].center) == pytest.approx(np.linalg.norm(truth.cameras[1].center), rel=0.01)
    report = json.loads((out / "report.json").read_text())
    assert set(report["cameras"]) == {"left", "right"} and len(report["views"]) == 12
    assert len(list((out / "overlays").glob("*.png"))) == 12
    assert (out / "config.yaml").is_file() and (out / "rig.png").is_file()
    assert "joint RMS" in capsys.readouterr().out


def test_mixed_image_sizes_fail_cleanly_and_write_nothing(tiny_shoot, tmp_path, capsys):
    _, dirs = tiny_shoot
    odd = tmp_path / "odd"
    odd.mkdir()
    for i, f in enumerate(sorted(dirs[0].glob("*.png"))):
        image = cv2.imread(str(f))
        cv2.imwrite(str(odd / f.name), image if i else cv2.resize(image, (160, 120)))
    out = tmp_path / "calib"
    code = main(["-q", "calibrate", "-c", str(odd), "-c", str(dirs[1]), "--board", "opencv_9x6", "--out", str(out)])
    assert code == 2
    assert "one camera's images must share one size" in capsys.readouterr().err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["odd"]


def test_missing_cameras_is_a_clean_error(tmp_path, capsys):
    assert main(["calibrate", "--board", "opencv_9x6", "--out", str(tmp_path / "x")]) == 2
    assert "give each camera's images with --camera" in capsys.readouterr().err


def test_convert_end_to_end(tmp_path):
    src = tmp_path / "fpc.json"
    src.write_text(json.dumps({"cameras": [{"intrinsic": [[900.0, 0, 500], [0, 900, 400], [0, 0, 1]],
                                            "distortion": [0, 0, 0, 0, 0], "rotation": [0, 0, 0],
                                            "translation": [0, 0, 0]}]}))
    out = tmp_path / "calibration.json"
    assert main(["-q", "calibrate", "convert", str(src), "--image-size", "1000x800", "--names", "front",
                 "-o", str(out)]) == 0
    calib = load_calibration(out)
    assert calib.names == ["front"] and calib["front"].image_size == (1000, 800)


def test_config_yaml_mirrors_defaults():
    from pathlib import Path

    from facecap.calibrate.config import CalibrateConfig
    from facecap.config import load_config
    path = Path(__file__).resolve().parents[2] / "configs" / "calibrate.yaml"
    assert load_config(CalibrateConfig, path) == CalibrateConfig()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_calibration_stopped_mid_run_keeps_the_previous_one_and_no_staging(tiny_shoot, tmp_path, capsys,
                                                                             monkeypatch, sigint_interrupts, stop):
    _, dirs = tiny_shoot
    out = tmp_path / "calib"
    args = ["-q", "calibrate", "-c", f"left={dirs[0]}", "-c", f"right={dirs[1]}", "--board", "opencv_9x6",
            "--out", str(out)]
    assert main(args) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from facecap.calibrate import api

    def stopped(*args, **kwargs):                  # the signal arrives while overlays are already staged
        assert list((out / ".facecap").glob("staging-*/overlays/*.png"))
        os.kill(os.getpid(), stop)
    monkeypatch.setattr(api, "solve_detections", stopped)
    assert main([*args, "--all-overlays"]) == (143 if stop == signal.SIGTERM else 130)
    assert "terminated" in capsys.readouterr().err or stop == signal.SIGINT
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (out / ".facecap").exists()
