"""livelink.csv: the exact header, ARKit name mapping (partial rigs included), timecodes, head and eye angles."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.export import write_livelink_csv
from facecap.export.config import EyeGaze
from facecap.export.livelink import (ARKIT_SHAPES, LIVELINK_HEADER, eye_angles, head_yaw_pitch_roll, livelink_mapping,
                                     matrix_from_yaw_pitch_roll)

# docs/formats.md §6, copied by hand: the header must match it byte for byte.
EXPECTED_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,EyeSquintLeft,"
    "EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,EyeSquintRight,"
    "EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,"
    "MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,MouthShrugUpper,"
    "MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,MouthUpperUpRight,"
    "BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,CheekSquintLeft,"
    "CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,"
    "LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll")


def _anim(names, weights, R=None, **kw):
    weights = np.asarray(weights, dtype=float)
    T = len(weights)
    R = np.broadcast_to(np.eye(3), (T, 3, 3)) if R is None else R
    return Animation(tuple(names), weights, R, np.zeros((T, 3)), **kw)


def test_header_is_exact(tmp_path):
    assert LIVELINK_HEADER == EXPECTED_HEADER
    assert len(ARKIT_SHAPES) == 52
    path = write_livelink_csv(_anim(["jawOpen"], [[0.5]]), tmp_path / "l.csv")
    assert path.read_bytes().split(b"\n")[0] == EXPECTED_HEADER.encode("ascii")


def test_header_matches_the_formats_doc():
    formats = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
    section = formats.read_text(encoding="utf-8").split("## 6.")[1]
    header = section.split("```")[1].strip()
    assert header == LIVELINK_HEADER


def test_rows_mapping_and_format(tmp_path):
    names = ["eyeBlink_L", "EyeBlinkRight", "JAWOPEN", "browInnerUp_L", "browInnerUp_R", "cheekPuff_L",
             "cheekPuff_R", "mouthSmile_Left"]
    w = [[0.1, 0.2, 0.3, 0.2, 0.6, 0.0, 1.0, 1.5]]
    anim = _anim(names, w, start_timecode="00:40:28:09", frames=[25])
    row = write_livelink_csv(anim, tmp_path / "l.csv").read_text().splitlines()[1].split(",")
    cols = dict(zip(EXPECTED_HEADER.split(","), row))
    assert cols["Timecode"] == "00:40:29:04.000" and cols["BlendShapeCount"] == "61"
    assert len(row) == 63
    assert cols["EyeBlinkLeft"] == "0.1000000000" and cols["EyeBlinkRight"] == "0.2000000000"
    assert cols["JawOpen"] == "0.3000000000"
    assert cols["BrowInnerUp"] == "0.4000000000" and cols["CheekPuff"] == "0.5000000000"  # means of halves
    assert cols["MouthSmileLeft"] == "1.0000000000"  # clipped to [0, 1]
    assert cols["TongueOut"] == "0.0000000000" and cols["MouthFunnel"] == "0.0000000000"  # absent -> 0
    assert all(cols[k] == "0.0000000000" for k in ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "RightEyeRoll"))


def test_ict_rig_names_map_fully(ict_face_rig):
    sources, unmapped = livelink_mapping(ict_face_rig.shape_names)
    used = sorted(k for ks in sources for k in ks)
    assert used == list(range(ict_face_rig.num_shapes)) and unmapped == []
    assert [ict_face_rig.shape_names[k] for k in sources[ARKIT_SHAPES.index("BrowInnerUp")]] == \
        ["browInnerUp_L", "browInnerUp_R"]
    assert sources[ARKIT_SHAPES.index("TongueOut")] == []


def test_unmapped_shapes_are_left_out_with_a_warning(tmp_path, caplog):
    anim = _anim(["jawOpen", "lipCornerPull", "eyeLookOut_L", "sneer"], [[0.5, 0.9, 0.4, 0.7]])
    row = write_livelink_csv(anim, tmp_path / "l.csv").read_text().splitlines()[1].split(",")
    assert "2 rig shapes match no ARKit name and are left out: lipCornerPull, sneer" in caplog.text
    cols = dict(zip(EXPECTED_HEADER.split(","), row))
    assert len(row) == 63 and cols["JawOpen"] == "0.5000000000" and cols["EyeLookOutLeft"] == "0.4000000000"
    assert cols["MouthSmileLeft"] == "0.0000000000"
    assert float(cols["LeftEyeYaw"]) == pytest.approx(np.radians(45) * 0.4)   # the eye looks out: gaze yaw


def test_ambiguous_names_raise(tmp_path):
    with pytest.raises(FormatError, match="'jawOpen' and 'JawOpen' both map to ARKit 'JawOpen'"):
        write_livelink_csv(_anim(["jawOpen", "JawOpen"], [[0, 0]]), tmp_path / "l.csv")
    assert not (tmp_path / "l.csv").exists()
    with pytest.raises(FormatError, match="CheekPuff both whole and split"):
        livelink_mapping(["cheekPuff", "cheekPuff_L"])


def _gaze_direction(yaw, pitch):
    """The unit gaze of an eye turned by R = Ry(yaw) Rx(pitch) from looking along +z (the face's forward)."""
    return Rotation.from_euler("YX", [yaw, pitch]).apply([0.0, 0.0, 1.0])


def test_eye_angles_follow_the_look_shapes():
    gaze = EyeGaze(out_deg=40, in_deg=20, up_deg=15, down_deg=25)
    names = ["EyeLookOutLeft", "EyeLookInRight", "EyeLookUpLeft", "EyeLookDownRight", "EyeLookInLeft"]
    arkit = np.zeros((len(names) + 1, 52))
    for i, name in enumerate(names):
        arkit[i, ARKIT_SHAPES.index(name)] = 1.0
    angles = eye_angles(arkit, gaze)
    left_out, right_in, left_up, right_down, left_in, rest = angles
    np.testing.assert_allclose(rest, 0)
    np.testing.assert_allclose(angles[:, [2, 5]], 0)                         # eyes do not roll
    # Looking to the performer's left (+x, the rig's axes): the left eye looks out, the right eye in.
    assert _gaze_direction(*left_out[:2])[0] == pytest.approx(np.sin(np.radians(40)))
    assert _gaze_direction(*right_in[3:5])[0] == pytest.approx(np.sin(np.radians(20)))
    assert _gaze_direction(*left_in[:2])[0] == pytest.approx(-np.sin(np.radians(20)))
    # Looking up is +y (the rig's up), looking down -y.
    assert _gaze_direction(*left_up[:2])[1] == pytest.approx(np.sin(np.radians(15)))
    assert _gaze_direction(*right_down[3:5])[1] == pytest.approx(-np.sin(np.radians(25)))


def test_head_angles_round_trip(rng):
    R = Rotation.random(300, random_state=1).as_matrix()
    locked = matrix_from_yaw_pitch_roll([[0.4, np.pi / 2, -0.3], [1.0, -np.pi / 2, 0.2],
                                         [0.4, np.pi / 2 - 1e-7, -0.3]])
    R = np.concatenate([R, locked])
    angles = head_yaw_pitch_roll(R)
    # scipy snaps to the gimbal-lock branch within ~1e-7 of it, costing up to ~3e-8 there.
    np.testing.assert_allclose(matrix_from_yaw_pitch_roll(angles), R, atol=1e-6)
    yaw, pitch, roll = 0.3, -0.2, 0.1
    Ry = Rotation.from_rotvec([0, yaw, 0]).as_matrix()
    Rx = Rotation.from_rotvec([pitch, 0, 0]).as_matrix()
    Rz = Rotation.from_rotvec([0, 0, roll]).as_matrix()
    np.testing.assert_allclose(head_yaw_pitch_roll(Ry @ Rx @ Rz), [yaw, pitch, roll], atol=1e-12)


def test_head_columns_are_written(tmp_path):
    R = matrix_from_yaw_pitch_roll([[0.3, -0.2, 0.1]])
    row = write_livelink_csv(_anim(["jawOpen"], [[0.0]], R=R), tmp_path / "l.csv").read_text().splitlines()[1]
    cols = dict(zip(EXPECTED_HEADER.split(","), row.split(",")))
    assert (cols["HeadYaw"], cols["HeadPitch"], cols["HeadRoll"]) == ("0.3000000000", "-0.2000000000",
                                                                        "0.1000000000")


def test_head_angles_are_continuous(tmp_path):
    """A head turned 180° (yaw and roll, as seen from an OpenCV camera) nodding ±0.2°: no 2π jumps."""
    T = 41
    nod = np.radians(0.2) * np.sin(np.linspace(0, 4 * np.pi, T))
    R = matrix_from_yaw_pitch_roll(np.stack([np.full(T, np.pi), nod, np.full(T, np.pi)], axis=1))
    rows = write_livelink_csv(_anim(["jawOpen"], np.zeros((T, 1)), R=R), tmp_path / "l.csv").read_text()
    head = np.array([[float(v) for v in row.split(",")[54:57]] for row in rows.splitlines()[1:]])
    assert np.abs(np.diff(head, axis=0)).max() < np.radians(0.1)
    np.testing.assert_allclose(matrix_from_yaw_pitch_roll(head), R, atol=1e-9)
