"""Importers: OpenCV sample files (real ones from ../shared and FileStorage-written stereo R/T), multical, fpc."""

import json

import cv2
import numpy as np
import pytest

from facecap.calibrate.convert import convert_calibration
from facecap.errors import FormatError
from tests.conftest import shared_path


def test_opencv_calibration_sample_output():
    calib = convert_calibration([shared_path("data", "calib", "opencv_stereo_9x6", "left_intrinsics.yml")])
    cam = calib.cameras[0]
    assert cam.image_size == (640, 480)
    assert cam.K[0, 0] == pytest.approx(535.91573396163199)
    assert cam.dist[4] == pytest.approx(0.23839153080878486)


def test_opencv_stereo_intrinsics_and_extrinsics(tmp_path):
    R = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
    T = np.array([[-3.34], [0.02], [0.01]])
    fs = cv2.FileStorage(str(tmp_path / "extrinsics.yml"), cv2.FILE_STORAGE_WRITE)
    fs.write("R", R)
    fs.write("T", T)
    fs.release()
    calib = convert_calibration([shared_path("data", "calib", "opencv_stereo_9x6", "intrinsics.yml"),
                                 tmp_path / "extrinsics.yml"], image_size=(640, 480), names=["left", "right"],
                                scale=25.0)
    assert calib.names == ["left", "right"] and calib.units == "mm"
    np.testing.assert_allclose(calib["right"].R, R)
    np.testing.assert_allclose(calib["right"].t, T.ravel() * 25.0)
    assert calib["right"].K[0, 2] == pytest.approx(334.55744527912015)


@pytest.mark.parametrize("name, match", [
    ("intrinsics.yml", "does not record the image size"),
    ("calibration.yml", "is an OpenCV image list, not a calibration"),
    ("stereo_calib.xml", "is an OpenCV image list, not a calibration"),
])
def test_opencv_files_that_cannot_convert_alone(name, match):
    with pytest.raises(FormatError, match=match):
        convert_calibration([shared_path("data", "calib", "opencv_stereo_9x6", name)])


def test_multical(tmp_path):
    K = [[800.0, 0, 320], [0, 800, 240], [0, 0, 1]]
    R = cv2.Rodrigues(np.array([0.0, 0.3, 0.0]))[0].tolist()
    data = {"cameras": {"cam1": {"model": "standard", "image_size": [640, 480], "K": K, "dist": [[0.1, 0, 0, 0, 0]]},
                        "cam2": {"model": "standard", "image_size": [640, 480], "K": K, "dist": [[0.2, 0, 0, 0, 0]]}},
            "camera_poses": {"cam1": {"R": np.eye(3).tolist(), "T": [0, 0, 0]},
                             "cam2_to_cam1": {"R": R, "T": [-0.1, 0, 0.02]}}}
    (tmp_path / "calibration.json").write_text(json.dumps(data))
    calib = convert_calibration([tmp_path / "calibration.json"])
    assert calib.units == "m" and calib.names == ["cam1", "cam2"]
    np.testing.assert_allclose(calib["cam2"].R, R)
    np.testing.assert_allclose(calib["cam2"].t, [-0.1, 0, 0.02])
    assert calib["cam2"].dist.tolist() == [0.2, 0, 0, 0, 0]


@pytest.mark.parametrize("as_list", [True, False])
def test_fpc_list_or_dict(tmp_path, as_list):
    cams = [{"intrinsic": [[900.0, 0, 500], [0, 900, 400], [0, 0, 1]], "distortion": [0.01, 0, 0, 0, 0],
             "rotation": [0.0, 0.1, 0.0], "translation": [10.0, 0, 800], "image_size": [1000, 800]},
            {"intrinsic": [910.0, 905.0, 501, 399], "distortion": [0, 0, 0, 0, 0],
             "rotation": np.eye(3).tolist(), "translation": [0, 0, 800], "width": 1000, "height": 800}]
    data = cams if as_list else {"A": cams[0], "B": cams[1]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    calib = convert_calibration([tmp_path / "c.json"], fmt="fpc")
    assert calib.names == (["cam0", "cam1"] if as_list else ["A", "B"])
    np.testing.assert_allclose(calib.cameras[0].R, cv2.Rodrigues(np.array([0.0, 0.1, 0.0]))[0])
    assert calib.cameras[1].K[1, 1] == 905.0 and calib.cameras[1].image_size == (1000, 800)


def test_fpc_missing_key_is_named(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps([{"intrinsic": np.eye(3).tolist(), "translation": [0, 0, 1]}]))
    with pytest.raises(FormatError, match="camera 'cam0': key 'rotation' is missing"):
        convert_calibration([tmp_path / "c.json"], image_size=(10, 10))
