"""export_animation: every delivery file, in the performer frame, renamed, all or nothing."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation, load_animation_json
from facecap.errors import ConfigError, FormatError
from facecap.export import ExportConfig, export_animation, in_performer_frame, load_mesh_sequence, read_fbx_csv
from facecap.export.gltf import read_glb
from facecap.export.livelink import LIVELINK_HEADER, head_yaw_pitch_roll
from facecap.geometry.rotations import matrix_from_euler_xyz
from facecap.rig import Rig, evaluate_rig
from facecap.rig.obj import load_obj
from tests.rig.rig_factory import tiny_rig

NAMES = ("jawOpen", "mouthFunnel", "eyeBlink_L")


@pytest.fixture
def rig(rng) -> Rig:
    """3 shapes (NAMES), 2 correctives, 2 identity modes, in cm."""
    return tiny_rig(rng)


@pytest.fixture
def anim(rng) -> Animation:
    """A take in an OpenCV camera's world: the head faces the camera (180° about y from it), nodding a little."""
    T = 12
    facing = Rotation.from_euler("xyz", [180, 0, 0], degrees=True).as_matrix()  # y down, z into the scene
    R = facing @ matrix_from_euler_xyz(rng.normal(scale=np.radians(0.2), size=(T, 3)) + [0, np.pi, 0])
    t = np.array([10.0, -20.0, 700.0]) + rng.normal(scale=0.3, size=(T, 3))
    return Animation(NAMES, rng.uniform(size=(T, 3)), R, t, fps=30.0, units="mm", start_timecode="00:40:28:09")


def _livelink_rows(path):
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert rows[0] == LIVELINK_HEADER.split(",")
    return rows[1:]


def test_writes_everything_in_the_performer_frame(tmp_path, rig, anim):
    identity = np.array([0.5, -1.0])
    world = evaluate_rig(rig.in_units("mm"), anim.weights, identity, R=anim.R, t=anim.t)
    paths = export_animation(anim, tmp_path / "out", rig=rig, world_meshes=world, identity=identity)
    assert set(paths) == {"json", "csv", "livelink", "glb", "plot", "meshes"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    assert load_animation_json(paths["json"]).R == pytest.approx(anim.R)          # the JSON keeps the world
    csv = read_fbx_csv(paths["csv"])
    performer = in_performer_frame(anim)
    np.testing.assert_allclose(csv.R, performer.R, atol=1e-7)
    np.testing.assert_allclose(csv.t, performer.t, atol=1e-6)
    # The head faces the camera (yaw = roll = 180° in the camera's world): delivered, it is near 0.
    assert np.degrees(np.abs(head_yaw_pitch_roll(csv.R))).max() < 1.5
    rows = _livelink_rows(paths["livelink"])
    assert rows[0][0] == "00:40:28:09.000" and rows[1][0] == "00:40:28:10.000"
    head = np.array([[float(v) for v in row[54:57]] for row in rows])
    np.testing.assert_allclose(head, head_yaw_pitch_roll(performer.R), atol=1e-9)
    meshes, _ = load_mesh_sequence(paths["meshes"])                               # stabilised: head space
    np.testing.assert_allclose(meshes, evaluate_rig(rig.in_units("mm"), anim.weights, identity), atol=1e-3)
    document, _ = read_glb(paths["glb"])
    assert document["asset"]["extras"]["head_frame"] == "performer"
    np.testing.assert_allclose(document["asset"]["extras"]["rest_pose"]["R"], anim.R[0], atol=0.02)


def test_world_frame_on_request(tmp_path, rig, anim):
    paths = export_animation(anim, tmp_path, rig=rig, config=ExportConfig(head_frame="world", meshes="obj"))
    np.testing.assert_allclose(read_fbx_csv(paths["csv"]).R, anim.R, atol=1e-7)
    np.testing.assert_allclose(read_fbx_csv(paths["csv"]).t, anim.t, atol=1e-6)
    assert len(list(paths["meshes"].glob("*.obj"))) == anim.num_frames
    np.testing.assert_allclose(load_obj(paths["meshes"] / "frame_000001.obj").vertices,
                               evaluate_rig(rig, anim.weights[1]) * 10, rtol=1e-7, atol=1e-6)


def test_the_same_take_in_two_worlds_exports_the_same_curves(tmp_path, rig, anim):
    """The camera's world (y down) and a y-up world with the head elsewhere give identical delivery files."""
    G = Rotation.from_euler("xyz", [180, 0, 0], degrees=True).as_matrix()
    y_up = Animation(NAMES, anim.weights, G @ anim.R, anim.t @ G.T + [0, 1600, 0], fps=anim.fps, units="mm",
                     start_timecode=anim.start_timecode)
    a = export_animation(anim, tmp_path / "a", rig=rig, config=ExportConfig(meshes="none"))
    b = export_animation(y_up, tmp_path / "b", rig=rig, config=ExportConfig(meshes="none"))
    for key in ("csv", "livelink"):
        left = [line.split(",") for line in a[key].read_text().splitlines()]
        right = [line.split(",") for line in b[key].read_text().splitlines()]
        assert len(left) == len(right) and left[0] == right[0]
        for x, y in zip(left[1:], right[1:]):
            assert [v for v in x if ":" in v] == [v for v in y if ":" in v]       # timecodes
            np.testing.assert_allclose([float(v) for v in x if ":" not in v],
                                       [float(v) for v in y if ":" not in v], atol=1e-5)


def test_fails_cleanly_and_leaves_the_folder_as_it_was(tmp_path, rig, anim):
    export_animation(anim, tmp_path, rig=rig)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    moved = Animation(NAMES, anim.weights * 0.5, anim.R, anim.t, fps=anim.fps, units="mm")
    broken = ExportConfig(formats=["json", "csv", "fbx"], blender=str(tmp_path / "no-such-python"))
    with pytest.raises(ConfigError, match="cannot run"):
        export_animation(moved, tmp_path, rig=rig, config=broken)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before       # nothing new, no scratch folder


def test_errors(tmp_path, rig, anim):
    with pytest.raises(FormatError, match="shape names differ"):
        export_animation(anim, tmp_path, rig=rig.replace(shape_names=("a", "b", "c")))
    with pytest.raises(ValueError, match="need the rig"):
        export_animation(anim, tmp_path, world_meshes=np.zeros((anim.num_frames, 6, 3)))
    with pytest.raises(ConfigError, match="unknown export format 'usd'"):
        ExportConfig(formats=["json", "usd"])


def test_without_a_rig_the_curves_are_still_written(tmp_path, anim, caplog):
    odd = Animation(("smirk", "blink", "sneer"), anim.weights, anim.R, anim.t, extra={"generator": {"x": 1}})
    paths = export_animation(odd, tmp_path)
    assert set(paths) == {"json", "csv", "livelink", "plot"}
    assert "animation.glb not written" in caplog.text and "match no ARKit name" in caplog.text
    assert all(float(v) == 0 for row in _livelink_rows(paths["livelink"]) for v in row[2:54])
    assert json.loads(paths["json"].read_text())["generator"] == {"x": 1}


def test_name_map_renames_the_curves(tmp_path, rig, anim):
    (tmp_path / "map.yaml").write_text("eyeBlink_L: EyeBlinkLeft\nmouthFunnel: mouthSmile_L\njawOpen: jaw_open\n"
                                       "notInThisRig: x\n")
    config = ExportConfig(name_map=str(tmp_path / "map.yaml"), meshes="none")
    paths = export_animation(anim, tmp_path / "out", rig=rig, config=config)
    csv = read_fbx_csv(paths["csv"])
    assert csv.shape_names == ("jaw_open", "mouthSmile_L", "EyeBlinkLeft")
    np.testing.assert_allclose(csv.weights, anim.weights, atol=1e-9)
    row = dict(zip(LIVELINK_HEADER.split(","), _livelink_rows(paths["livelink"])[0]))
    assert float(row["MouthSmileLeft"]) == pytest.approx(anim.weights[0, 1])
    assert float(row["EyeBlinkLeft"]) == pytest.approx(anim.weights[0, 2])
    assert float(row["JawOpen"]) == 0.0                                         # jaw_open is no ARKit name
    document, _ = read_glb(paths["glb"])
    assert document["meshes"][0]["extras"]["targetNames"] == [
        "jaw_open", "mouthSmile_L", "EyeBlinkLeft", "jaw_open_x_mouthSmile_L", "jaw_open_x_mouthSmile_L_x_EyeBlinkLeft"]
