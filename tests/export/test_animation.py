"""animation.json: round trip, kept extra keys, validation naming file and key."""

import json

import numpy as np
import pytest

from facecap.animation import Animation, load_animation_json, save_animation_json
from facecap.errors import FormatError, ShapeError
from facecap.geometry.rotations import matrix_from_euler_xyz
from tests.conftest import shared_path


def random_animation(rng, T=7, names=("jawOpen", "eyeBlink_L", "eyeBlink_R"), **kw) -> Animation:
    return Animation(shape_names=names, weights=rng.uniform(size=(T, len(names))),
                     R=matrix_from_euler_xyz(rng.uniform(-np.pi, np.pi, size=(T, 3))), t=rng.normal(size=(T, 3)) * 100,
                     **kw)


def test_round_trip_is_exact(tmp_path, rng):
    anim = random_animation(rng, fps=24.0, units="cm", frames=np.arange(10, 17), start_timecode="01:02:03:04",
                            extra={"generator": {"seed": 3, "lights": [0.1, 0.2]}})
    back = load_animation_json(save_animation_json(anim, tmp_path / "a.json"))
    for key in ("weights", "R", "t", "frames"):
        np.testing.assert_array_equal(getattr(back, key), getattr(anim, key))
    assert (back.shape_names, back.fps, back.units, back.start_timecode, back.extra) == \
        (anim.shape_names, anim.fps, anim.units, anim.start_timecode, anim.extra)
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["format"] == "facecap-animation" and data["version"] == 1
    assert data["frames"][1] == {"frame": 11, "time": 11 / 24, "weights": anim.weights[1].tolist(),
                                 "head": {"R": anim.R[1].tolist(), "t": anim.t[1].tolist()}}
    assert not (tmp_path / "a.json.tmp").exists()


def test_properties(rng):
    anim = random_animation(rng, T=4, fps=25.0)
    assert anim.num_frames == 4 and anim.num_shapes == 3
    np.testing.assert_array_equal(anim.frame_numbers, [0, 1, 2, 3])
    np.testing.assert_allclose(anim.times, [0, 0.04, 0.08, 0.12])


def test_ground_truth_loads():
    anim = load_animation_json(shared_path("data", "takes", "dev_ict_4cam", "ground_truth.json"))
    assert anim.num_frames == 60 and anim.num_shapes == 53 and anim.units == "mm" and "generator" in anim.extra
    np.testing.assert_allclose(anim.R @ anim.R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (60, 3, 3)),
                               atol=1e-9)


def _valid() -> dict:
    return {"format": "facecap-animation", "version": 1, "fps": 30.0, "units": "mm", "shape_names": ["a", "b"],
            "frames": [{"frame": 0, "time": 0.0, "weights": [0.1, 0.2],
                        "head": {"R": np.eye(3).tolist(), "t": [1, 2, 3]}}]}


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="other"), "key 'format'"),
    (lambda d: d.update(version=2), "key 'version'"),
    (lambda d: d.pop("fps"), "key 'fps' is missing"),
    (lambda d: d.update(fps=0), "key 'fps' must be positive"),
    (lambda d: d.update(fps="30"), "key 'fps' must be"),
    (lambda d: d.update(units="inch"), "key 'units'"),
    (lambda d: d.update(shape_names=["a", "a"]), "key 'shape_names'"),
    (lambda d: d.update(start_timecode="1:2:3"), "key 'start_timecode'"),
    (lambda d: d.update(frames={}), "key 'frames' must be list"),
    (lambda d: d["frames"].append(3), r"frames\[1\]: expected an object"),
    (lambda d: d["frames"][0].pop("frame"), r"frames\[0\]: key 'frame' is missing"),
    (lambda d: d["frames"][0].update(frame=1.5), r"frames\[0\]: key 'frame' must be int"),
    (lambda d: d["frames"][0].update(weights=[0.1]), r"frames\[0\]: key 'weights' must have shape \[2\]"),
    (lambda d: d["frames"][0].update(weights=[0.1, "x"]), r"frames\[0\]: key 'weights' must hold numbers"),
    (lambda d: d["frames"][0].pop("head"), r"frames\[0\]: key 'head' is missing"),
    (lambda d: d["frames"][0]["head"].update(R=[[1, 0], [0, 1]]), r"frames\[0\].head: key 'R' must have shape"),
    (lambda d: d["frames"][0]["head"].update(t=[1, 2, float("nan")]), r"frames\[0\].head: key 't' holds NaN"),
])
def test_validation_names_file_and_key(tmp_path, edit, match):
    data = _valid()
    edit(data)
    path = tmp_path / "anim.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=rf"anim\.json: {match}"):
        load_animation_json(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_animation_json(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(FormatError, match=r"x\.json: not valid JSON"):
        load_animation_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[]")
    with pytest.raises(FormatError, match=r"y\.json: expected a JSON object"):
        load_animation_json(tmp_path / "y.json")


def test_constructor_guards(rng):
    R, t = np.broadcast_to(np.eye(3), (2, 3, 3)), np.zeros((2, 3))
    with pytest.raises(ShapeError, match="weights must have shape"):
        Animation(("a",), np.zeros((2, 2)), R, t)
    with pytest.raises(ShapeError, match="R must have shape"):
        Animation(("a",), np.zeros((2, 1)), np.zeros((3, 3, 3)), t)
    with pytest.raises(ShapeError, match="t must have shape"):
        Animation(("a",), np.zeros((2, 1)), R, np.zeros((2, 2)))
    with pytest.raises(ShapeError, match="frames must be integers"):
        Animation(("a",), np.zeros((2, 1)), R, t, frames=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="fps must be a positive"):
        Animation(("a",), np.zeros((2, 1)), R, t, fps=-1)
    with pytest.raises(ValueError, match="units must be one of"):
        Animation(("a",), np.zeros((2, 1)), R, t, units="ft")
    with pytest.raises(ValueError, match="start_timecode"):
        Animation(("a",), np.zeros((2, 1)), R, t, start_timecode="10")
    with pytest.raises(ValueError, match="weights has 1 NaN"):
        Animation(("a",), np.array([[0.0], [np.nan]]), R, t)
    with pytest.raises(ValueError, match="unique"):
        Animation(("a", "a"), np.zeros((2, 2)), R, t)
    with pytest.raises(ValueError, match="extra may not hold the format key 'fps'"):
        from facecap.animation import animation_to_dict
        animation_to_dict(Animation(("a",), np.zeros((2, 1)), R, t, extra={"fps": 3}))
