"""Real photos: OpenCV's 13 stereo pairs of a 9x6 board with 25 mm squares (samples/data/left*.jpg, right*.jpg).

OpenCV's published left-camera result (left_intrinsics.yml, calibration.cpp with -a 1, i.e.
CALIB_FIX_ASPECT_RATIO, cornerSubPix half window 11): RMS 0.3926 px, fx 535.92, cx 342.28, cy 235.57,
per-view RMS 1.18 px for left02. OpenCV's stereo_calib gives a baseline of 3.34 squares = 83.6 mm.
"""

import numpy as np
import pytest

from facecap.calibrate import CalibrateConfig, calibrate, solve_detections
from facecap.calibrate.boards import OPENCV_SAMPLE_HALF_WINDOW, load_board
from facecap.calibrate.detect import detect_sources
from facecap.calibrate.intrinsics import calibrate_intrinsics
from facecap.calibrate.sources import open_sources
from tests.conftest import shared_path


def opencv_sample_config() -> CalibrateConfig:
    config = CalibrateConfig()
    config.intrinsics.fix_aspect = True
    config.detect.subpix_window = OPENCV_SAMPLE_HALF_WINDOW
    return config


@pytest.fixture(scope="module")
def stereo_dir():
    return shared_path("data", "calib", "opencv_stereo_9x6")


@pytest.fixture(scope="module")
def opencv_detections(stereo_dir):
    sources = open_sources([str(stereo_dir / "left*.jpg"), str(stereo_dir / "right*.jpg")])
    return detect_sources(sources, load_board("opencv_9x6"), OPENCV_SAMPLE_HALF_WINDOW)


def test_glob_sources_pair_by_number(stereo_dir):
    left, right = open_sources([str(stereo_dir / "left*.jpg"), str(stereo_dir / "right*.jpg")])
    assert (left.name, right.name) == ("left", "right")
    assert left.keys == right.keys and left.keys[:2] == ("1", "2") and len(left.keys) == 13


def test_left_camera_matches_opencv_published(opencv_detections, stereo_dir):
    det = opencv_detections
    assert len(det.found("left")) == 13
    intr = calibrate_intrinsics(det.found("left"), det.board, det.image_sizes["left"],
                                opencv_sample_config().intrinsics)
    assert intr.rms_px == pytest.approx(0.3926, abs=0.02)
    assert intr.K[0, 0] == pytest.approx(535.92, abs=1.0)
    assert intr.K[1, 1] == pytest.approx(intr.K[0, 0])
    assert intr.K[0, 2] == pytest.approx(342.28, abs=1.0)
    assert intr.K[1, 2] == pytest.approx(235.57, abs=1.0)
    assert int(np.argmax(intr.view_rms_px)) == 1 and intr.view_rms_px[1] == pytest.approx(1.18, abs=0.1)


def test_stereo_baseline_and_left02_flagged(opencv_detections):
    result = solve_detections(opencv_detections, opencv_sample_config())
    left, right = result.calibration.cameras
    np.testing.assert_allclose(left.R, np.eye(3), atol=1e-12)
    assert np.linalg.norm(right.center - left.center) == pytest.approx(83.6, abs=1.0)
    assert result.calibration.rms_px <= 0.45
    assert result.calibration.units == "mm"
    rejected = [r["image"].rsplit("/", 1)[-1] for r in result.report["rejected"]]
    assert "left02.jpg" in rejected


def test_default_pipeline_writes_everything(stereo_dir, tmp_path):
    config = CalibrateConfig()
    result = calibrate([str(stereo_dir / "left*.jpg"), str(stereo_dir / "right*.jpg")], "opencv_9x6", config,
                       tmp_path / "out")
    out = tmp_path / "out"
    for name in ("calibration.json", "report.json", "residuals.png", "rig.png"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "overlays").glob("*.png"))) == 2 * config.detect.overlays
    assert result.calibration.rms_px < 0.3  # the adaptive sub-pixel window beats OpenCV's fixed 11 px one
    assert np.linalg.norm(result.calibration.cameras[1].center) == pytest.approx(83.6, abs=1.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging folder cleaned up
