"""Rig npz load/save round trips and the validation errors, each naming its key."""

import numpy as np
import pytest

from facecap.errors import FormatError
from facecap.rig import Rig, load_rig, save_rig
from facecap.rig.io import RIG_FORMAT
from tests.conftest import shared_path
from tests.rig.rig_factory import tiny_rig

F32 = {"rtol": 0, "atol": 1e-6}


def _assert_rigs_equal(a: Rig, b: Rig) -> None:
    assert a.units == b.units and a.shape_names == b.shape_names
    for key in ("neutral", "shape_deltas", "corrective_deltas", "identity_deltas"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), **F32)
        assert getattr(b, key).dtype == np.float64
    for key in ("faces", "corrective_keys", "uv_faces", "face_material", "material_opaque", "landmark_vertices",
                "texture"):
        assert (getattr(a, key) is None) == (getattr(b, key) is None), key
        if getattr(a, key) is not None:
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    if a.uv is not None:
        np.testing.assert_allclose(a.uv, b.uv, **F32)
    assert a.material_names == b.material_names and a.landmark_scheme == b.landmark_scheme


def test_tiny_rig_round_trip(tmp_path, rng):
    rig = tiny_rig(rng)
    save_rig(rig, tmp_path / "tiny.npz")
    _assert_rigs_equal(rig, load_rig(tmp_path / "tiny.npz"))


def test_minimal_rig_round_trip(tmp_path, rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    save_rig(rig, tmp_path / "min.npz")
    back = load_rig(tmp_path / "min.npz")
    _assert_rigs_equal(rig, back)
    assert back.corrective_deltas.shape == (0, 6, 3) and back.identity_deltas.shape == (0, 6, 3)


def test_single_tile_texture_is_stored_as_hwc(tmp_path, rng):
    rig = tiny_rig(rng)
    rig = rig.replace(texture=rig.texture[:1])
    save_rig(rig, tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz") as data:
        assert data["texture"].shape == (4, 4, 3)
    np.testing.assert_array_equal(load_rig(tmp_path / "t.npz").texture, rig.texture)


def test_ict_face_round_trip(tmp_path):
    path = shared_path("data", "rigs", "ict_face.npz")
    rig = load_rig(path)
    assert rig.units == "cm" and rig.num_vertices == 9409 and rig.num_shapes == 53
    save_rig(rig, tmp_path / "ict.npz")
    back = load_rig(tmp_path / "ict.npz")
    _assert_rigs_equal(rig, back)
    with np.load(path) as src:  # float32 in the file, so the round trip is exact
        np.testing.assert_array_equal(back.neutral, src["neutral"].astype(np.float64))


def _write(tmp_path, arrays: dict) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


def _arrays(rng) -> dict:
    rig = tiny_rig(rng, correctives=True, extras=True)
    return {"format": np.array(RIG_FORMAT), "version": np.array(1), "units": np.array("cm"),
            "neutral": rig.neutral.astype(np.float32), "faces": rig.faces,
            "shape_names": np.array(rig.shape_names), "shape_deltas": rig.shape_deltas.astype(np.float32),
            "corrective_keys": rig.corrective_keys, "corrective_deltas": rig.corrective_deltas.astype(np.float32),
            "uv": rig.uv.astype(np.float32), "uv_faces": rig.uv_faces,
            "landmark_scheme": np.array("test3"), "landmark_vertices": rig.landmark_vertices}


@pytest.mark.parametrize("change, match", [
    ({"neutral": None}, "'neutral' is missing"),
    ({"format": np.array("other")}, "'format' must be"),
    ({"version": np.array(2)}, "'version' must be 1"),
    ({"units": np.array("inch")}, "'units'"),
    ({"neutral": np.zeros((6, 3), np.int32)}, "'neutral'.*floats"),
    ({"faces": np.zeros((4, 3), np.float32)}, "'faces'.*dtype"),
    ({"faces": np.array([[0, 1, 6], [0, 1, 2], [0, 1, 2], [0, 1, 2]], np.int32)}, "'faces'.*indices"),
    ({"shape_names": np.array(["a", "b"])}, "'shape_names'.*2 names for 3"),
    ({"shape_names": np.array(["a", "a", "b"])}, "'shape_names'.*unique"),
    ({"shape_deltas": np.full((3, 6, 3), np.nan, np.float32)}, "'shape_deltas'.*NaN"),
    ({"shape_deltas": np.zeros((3, 5, 3), np.float32)}, "'shape_deltas'.*shape"),
    ({"corrective_keys": np.array([[0, 3, -1, -1], [0, 1, 2, -1]], np.int32)}, "'corrective_keys'.*indices"),
    ({"corrective_keys": np.array([[0, -1, -1, -1], [0, 1, 2, -1]], np.int32)}, "'corrective_keys'.*2 to 4"),
    ({"corrective_deltas": None}, "'corrective_keys' and 'corrective_deltas' come together"),
    ({"uv_faces": None}, "'uv_faces'.*together"),
    ({"uv_faces": np.full((4, 3), 7, np.int32)}, "'uv_faces'.*indices"),
    ({"landmark_vertices": np.array([0, 99], np.int32)}, "'landmark_vertices'.*indices"),
    ({"landmark_scheme": np.array(["a", "b"])}, "'landmark_scheme'.*scalar"),
    ({"neutral": np.zeros((0, 3), np.float32), "shape_deltas": np.zeros((3, 0, 3), np.float32),
      "corrective_deltas": np.zeros((2, 0, 3), np.float32)}, "'neutral'.*the rig has no vertices"),
    ({"neutral": np.array(1.0, np.float32)}, r"bad\.npz: a rig key does not read"),
    ({"version": np.array("one")}, r"bad\.npz: a rig key does not read"),
])
def test_validation_names_the_key(tmp_path, rng, change, match):
    arrays = _arrays(rng)
    for key, value in change.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    with pytest.raises(FormatError, match=match):
        load_rig(_write(tmp_path, arrays))


def test_error_names_the_file(tmp_path, rng):
    arrays = _arrays(rng)
    arrays["neutral"] = np.full((6, 3), np.inf, np.float32)
    with pytest.raises(FormatError, match=r"bad\.npz.*'neutral'.*NaN or infinite"):
        load_rig(_write(tmp_path, arrays))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_rig(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(FormatError, match="junk.npz: not a readable npz"):
        load_rig(tmp_path / "junk.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(FormatError, match="empty.npz: the rig file is empty"):
        load_rig(tmp_path / "empty.npz")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(FormatError, match=r"array.npy: a single \.npy array, not a rig npz"):
        load_rig(tmp_path / "array.npy")


def test_constructor_validates(rng):
    rig = tiny_rig(rng)
    with pytest.raises(FormatError, match="'texture'"):
        rig.replace(texture=np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(FormatError, match="'face_material'"):
        rig.replace(face_material=np.array([0, 0, 1, 2], np.int16))
    with pytest.raises(FormatError, match="'material_opaque'"):
        rig.replace(material_opaque=np.array([1, 0], np.int8))
