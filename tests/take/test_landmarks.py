"""Landmarks: file round trip and guards, MediaPipe detection against a stored reference and dev_ict_4cam truth."""

import json

import numpy as np
import pytest

from facecap.errors import FacecapError, FormatError, ShapeError
from facecap.take import (MULTIPIE68_GROUPS, Landmarks2D, MediaPipeFaceDetector, detect_landmarks, load_landmarks,
                          mediapipe_to_multipie68, open_take, save_landmarks)
from facecap.take.mediapipe_detector import MEDIAPIPE_TO_MULTIPIE68, PIXEL_CENTRE_SHIFT
from tests.conftest import shared_path


def _model():
    return shared_path("models", "face_landmarker.task")


def test_round_trip_and_gt_format(tmp_path, rng):
    lm = Landmarks2D(rng.uniform(0, 500, (3, 2, 68, 2)), rng.uniform(0, 1, (3, 2, 68)), ("a", "b"),
                     frames=[4, 5, 6])
    save_landmarks(lm, tmp_path / "lm.json")
    back = load_landmarks(tmp_path / "lm.json")
    assert back.camera_names == ("a", "b") and back.frames.tolist() == [4, 5, 6]
    np.testing.assert_allclose(back.points, lm.points, atol=1e-3)
    np.testing.assert_allclose(back.confidence, lm.confidence, atol=1e-3)
    assert back.cameras(["b"]).points.shape == (3, 1, 68, 2)
    gt = {"format": "facecap-landmarks-gt", "version": 1, "scheme": "multipie68",
          "cameras": {"c0": {"points": np.zeros((2, 68, 2)).tolist(), "visible": [[True] * 68, [False] * 68]}}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    g = load_landmarks(tmp_path / "gt.json")
    assert g.confidence[0].min() == 1 and g.confidence[1].max() == 0


def test_guards(tmp_path):
    with pytest.raises(ShapeError, match="landmark points must have shape"):
        Landmarks2D(np.zeros((2, 68, 2)), np.zeros((2, 68)), ("a",))
    with pytest.raises(FacecapError, match="2 camera names for 1 cameras"):
        Landmarks2D(np.zeros((1, 1, 68, 2)), np.zeros((1, 1, 68)), ("a", "b"))
    with pytest.raises(FacecapError, match="scheme multipie68 has 68 landmarks, got 5"):
        Landmarks2D(np.zeros((1, 1, 5, 2)), np.zeros((1, 1, 5)), ("a",))
    with pytest.raises(FacecapError, match=r"confidence must lie in \[0, 1\]"):
        Landmarks2D(np.zeros((1, 1, 68, 2)), np.full((1, 1, 68), 2.0), ("a",))
    lm = Landmarks2D(np.zeros((1, 1, 68, 2)), np.zeros((1, 1, 68)), ("a",))
    with pytest.raises(FacecapError, match="landmarks lack camera"):
        lm.cameras(["z"])
    with pytest.raises(FormatError, match="landmarks file not found"):
        load_landmarks(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    for data, match in [({"format": "x", "version": 1}, "'format' must be"),
                        ({"format": "facecap-landmarks", "version": 2}, "'version' must be 1"),
                        ({"format": "facecap-landmarks", "version": 1, "cameras": {}}, "'cameras' must be"),
                        ({"format": "facecap-landmarks", "version": 1, "cameras": {"a": {}}}, "'points' is missing"),
                        ({"format": "facecap-landmarks", "version": 1,
                          "cameras": {"a": {"points": [[[0, 0]] * 68], "visible": [[True] * 3]}}}, "visible must be"),
                        ({"format": "facecap-landmarks", "version": 1,
                          "cameras": {"a": {"points": [[[0, 0]] * 68]}, "b": {"points": [[[0, 0]] * 68] * 2}}},
                         "cameras differ")]:
        bad.write_text(json.dumps(data))
        with pytest.raises(FormatError, match=match):
            load_landmarks(bad)


@pytest.mark.parametrize("bad", [float("nan"), None, float("inf"), -1e300, 2e6])
def test_a_non_finite_or_absurd_point_is_a_missing_point(tmp_path, rng, caplog, bad):
    """Whatever 'visible' says: such a point is never used (a NaN once crashed the photometric fit)."""
    lm = Landmarks2D(rng.uniform(0, 500, (2, 2, 68, 2)), np.ones((2, 2, 68)), ("a", "b"))
    save_landmarks(lm, tmp_path / "lm.json")
    data = json.loads((tmp_path / "lm.json").read_text())
    data["cameras"]["b"]["points"][1][7][0] = bad           # visible stays true
    data["cameras"]["b"]["confidence"][0][3] = None          # a null confidence is a missing point too
    (tmp_path / "lm.json").write_bytes(json.dumps(data).replace("Infinity", "1e999").encode())
    back = load_landmarks(tmp_path / "lm.json")
    missing = np.zeros((2, 2, 68), bool)
    missing[1, 1, 7] = missing[0, 1, 3] = True
    np.testing.assert_array_equal(back.confidence == 0, missing)
    assert np.isfinite(back.points).all() and back.points[1, 1, 7].tolist() == [0, 0]
    np.testing.assert_allclose(back.points[~missing], lm.points[~missing], atol=1e-3)
    assert "2 landmark points are NaN, null, inf or beyond" in caplog.text and "cameras b" in caplog.text
    given = np.where(missing[..., None], bad if bad is not None else np.nan, lm.points.astype(np.float64))
    direct = Landmarks2D(given, lm.confidence, ("a", "b"))             # float64 points, made float32 inside
    np.testing.assert_array_equal(direct.confidence == 0, missing)


@pytest.mark.parametrize("text, match", [("[1, 2]", "must hold a JSON object .* got a list"),
                                         ("\"x\"", "must hold a JSON object"),
                                         ("{", "not valid JSON"),
                                         (b"\xff\xfe{", "not valid JSON"),
                                         ('{"format": "facecap-landmarks", "version": 1, "frames": ["a"], "cameras": '
                                          '{"a": {"points": [[[0, 0]]]}}}', "'frames' must be a list of integer")])
def test_a_malformed_landmarks_file_is_a_format_error_naming_it(tmp_path, text, match):
    path = tmp_path / "lm.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(FormatError, match=f"lm.json: {match}"):
        load_landmarks(path)


def test_a_files_frames_are_placed_on_the_takes(rng, caplog):
    """Rows go to the take frames the file names; frames it lacks get no landmarks, frames beyond the take go."""
    lm = Landmarks2D(rng.uniform(0, 500, (3, 2, 68, 2)), rng.uniform(0.5, 1, (3, 2, 68)), ("a", "b"),
                     frames=[3, 0, 7])
    with caplog.at_level("WARNING"):
        take = lm.for_take(5, "lm.json")
    assert take.num_frames == 5 and take.frame_numbers.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(take.points[3], lm.points[0])
    np.testing.assert_array_equal(take.points[0], lm.points[1])
    assert take.confidence[[1, 2, 4]].max() == 0 and take.confidence[[0, 3]].min() >= 0.5
    assert "1 of its frames lie outside the take's 5 frames" in caplog.text
    assert "no landmarks for 3 of the take's 5 frames" in caplog.text
    whole = Landmarks2D(lm.points, lm.confidence, ("a", "b"))            # no frames: rows 0, 1, 2
    np.testing.assert_array_equal(whole.for_take(2).points, lm.points[:2])
    later = Landmarks2D(lm.points[:2], lm.confidence[:2], ("a", "b"), frames=[10, 12])
    with pytest.raises(FormatError, match=r"lm.json: its frames \(10..12\) are none of the take's 5"):
        later.for_take(5, "lm.json")


def test_missing_model_says_where_to_get_it(tmp_path):
    with pytest.raises(FacecapError, match="model not found: .*never downloads.*storage.googleapis.com"):
        MediaPipeFaceDetector(tmp_path / "face_landmarker.task")


def test_astronaut_matches_reference():
    import imageio.v3 as iio
    image = iio.imread(shared_path("data", "faces", "astronaut.png"))[..., :3]
    ref = json.loads(shared_path("data", "faces", "astronaut_mediapipe_reference.json").read_text())
    ref_px = np.array(ref["landmarks_px"])[:, :2] - PIXEL_CENTRE_SHIFT   # reference: x_norm * width
    with MediaPipeFaceDetector(_model()) as det:
        mesh = det.detect(image)
        assert det.detect(np.zeros((128, 128, 3), np.uint8)) is None     # no face: None, no crash
    assert mesh.shape == (478, 3)
    assert np.abs(mesh[:, :2] - ref_px).max() < 0.5
    p = mediapipe_to_multipie68(mesh[:, :2])
    # image left is the subject's right: right-eye outer corner 36 < inner 39 < left inner 42 < outer 45
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]
    assert p[48, 0] < p[51, 0] < p[54, 0]                                # mouth corners around the lip peak
    assert p[27, 1] < p[30, 1] < p[33, 1] < p[51, 1] < p[57, 1] < p[8, 1]  # top to bottom along the midline
    assert p[19, 1] < p[37, 1] and p[24, 1] < p[44, 1]                   # brows above eyes
    assert len({i for row in MEDIAPIPE_TO_MULTIPIE68 for i in row}) >= 68


def test_dev_take_detection_against_truth(tmp_path):
    """Detected 68 points vs landmarks_gt.json: median px error per group (see the report for all frames)."""
    path = shared_path("data", "takes", "dev_ict_4cam")
    gt = load_landmarks(path / "landmarks_gt.json")
    frames = [0, 30, 59]
    with open_take(path) as take:
        lm = detect_landmarks(take, _model(), cache_dir=tmp_path, frames=frames)
        again = detect_landmarks(take, _model(), cache_dir=tmp_path, frames=frames)
    assert len(list(tmp_path.glob("landmarks_*.npz"))) == 4
    np.testing.assert_array_equal(again.points, lm.points)
    assert lm.frames.tolist() == frames and lm.camera_names == gt.camera_names
    assert (lm.confidence[:, :, 0] == 0.5).all() and (lm.confidence[:, :, 30] == 1).all()
    err = np.linalg.norm(lm.points - gt.points[frames], axis=-1)
    seen = gt.confidence[frames] > 0
    limits = {"jaw": 20.0, "brows": 10.0, "nose": 8.0, "eyes": 4.0, "mouth": 5.0}   # px, 800x600 images
    for group, (a, b) in MULTIPIE68_GROUPS.items():
        assert np.median(err[:, :, a:b][seen[:, :, a:b]]) < limits[group], group


def test_no_face_gives_zero_confidence(tmp_path):
    import cv2
    (tmp_path / "cam0").mkdir()
    cv2.imwrite(str(tmp_path / "cam0" / "0.png"), np.full((64, 64, 3), 90, np.uint8))
    with open_take(tmp_path) as take:
        lm = detect_landmarks(take, _model())
    assert lm.confidence.max() == 0 and lm.points.shape == (1, 1, 68, 2)
