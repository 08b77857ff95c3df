"""calibration.json: a round trip, and a malformed file is a FormatError naming the file, camera and key."""

import json

import numpy as np
import pytest

from facecap.camera.model import Calibration, Camera, load_calibration, save_calibration
from facecap.errors import FormatError


def _calibration() -> Calibration:
    K = np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]])
    return Calibration("mm", (Camera("cam00", (320, 240), K, np.zeros(5), np.eye(3), np.array([0, 0, 700.0])),))


def test_round_trip(tmp_path):
    save_calibration(_calibration(), tmp_path / "c.json")
    back = load_calibration(tmp_path / "c.json")
    assert back.names == ["cam00"] and back["cam00"].image_size == (320, 240)
    np.testing.assert_array_equal(back["cam00"].K, _calibration()["cam00"].K)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["cameras"]["cam00"].update(image_size="320x240"),
     r"c\.json: camera 'cam00': 'image_size' must be \[width, height\] in whole pixels, got '320x240'"),
    (lambda d: d["cameras"]["cam00"].update(image_size=[320.5, 240]), "'image_size' must be"),
    (lambda d: d["cameras"]["cam00"].update(image_size=[0, 240]), r"camera 'cam00': image_size must be .* > 0"),
    (lambda d: d["cameras"]["cam00"].update(K="fx"), r"c\.json: camera 'cam00': 'K' is not numeric"),
    (lambda d: d["cameras"].update(cam00=[1, 2]), r"c\.json: camera 'cam00': must be an object"),
    (lambda d: d.update(rms_px="low"), r"c\.json: 'rms_px' must be a number"),
])
def test_a_malformed_calibration_names_file_camera_and_key(tmp_path, change, match):
    save_calibration(_calibration(), tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    change(data)
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match=match):
        load_calibration(tmp_path / "c.json")


@pytest.mark.parametrize("content, match", [(b"[1, 2]", "must hold a JSON object"), (b"{", "not valid JSON"),
                                            (b"\xff\xfe", "not valid JSON")])
def test_a_calibration_file_that_is_not_an_object_is_a_format_error(tmp_path, content, match):
    (tmp_path / "c.json").write_bytes(content)
    with pytest.raises(FormatError, match=f"c.json: {match}"):
        load_calibration(tmp_path / "c.json")
