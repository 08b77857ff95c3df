"""OBJ meshes and OBJ-folder rigs: parsing, triangulation, topology checks, correctives, round trips."""

import json

import numpy as np
import pytest

from facecap.errors import FormatError
from facecap.rig import evaluate_rig
from facecap.rig.obj import ObjMesh, export_obj_folder, import_obj_folder, load_obj, save_obj
from tests.rig.rig_factory import tiny_rig

QUAD_AND_PENTAGON = """# a quad and a pentagon with uvs and normals, two materials
o thing
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
v 2 1 0.5
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
usemtl skin
f 1/1/1 2/2/1 3/3/1 4/4/1
usemtl lips
f 2/2/1 5/1/1 6/3/1 3/4/1 4/4/1
"""


def test_quads_and_ngons_are_fan_triangulated(tmp_path):
    path = tmp_path / "q.obj"
    path.write_text(QUAD_AND_PENTAGON)
    mesh = load_obj(path)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2], [1, 2, 3]])
    np.testing.assert_array_equal(mesh.uv_faces, [[0, 1, 2], [0, 2, 3], [1, 0, 2], [1, 2, 3], [1, 3, 3]])
    assert mesh.vertices.shape == (6, 3) and mesh.vertices[5, 2] == 0.5
    np.testing.assert_array_equal(mesh.face_material, [0, 0, 1, 1, 1])
    assert mesh.material_names == ("skin", "lips")
    assert mesh.faces.dtype == np.int32


@pytest.mark.parametrize("face_lines, uv", [
    ("f 1 2 3\nf 1 3 4\n", False),
    ("f 1//1 2//1 3//1\nf 1//1 3//1 4//1\n", False),
    ("f -4/-4 -3/-3 -2/-2\nf 1/1 3/3 4/4\n", True),
])
def test_face_syntaxes(tmp_path, face_lines, uv):
    header = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
    (tmp_path / "m.obj").write_text(header + face_lines)
    mesh = load_obj(tmp_path / "m.obj")
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])
    assert (mesh.uv is not None) == uv


def test_save_load_round_trip(tmp_path, rng):
    rig = tiny_rig(rng)
    mesh = ObjMesh(rig.neutral, rig.faces, rig.uv, rig.uv_faces, rig.face_material, rig.material_names)
    back = load_obj(save_obj(mesh, tmp_path / "m.obj"))
    np.testing.assert_allclose(back.vertices, mesh.vertices, rtol=1e-8)
    np.testing.assert_allclose(back.uv, mesh.uv, rtol=1e-8)
    for key in ("faces", "uv_faces", "face_material"):
        np.testing.assert_array_equal(getattr(back, key), getattr(mesh, key))
    assert back.material_names == mesh.material_names
    plain = load_obj(save_obj(ObjMesh(rig.neutral, rig.faces), tmp_path / "p.obj"))
    assert plain.uv is None and plain.face_material is None


@pytest.mark.parametrize("text, match", [
    ("v 0 0 0\n", "no faces"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "vertex index out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "3 or more corners"),
    ("v 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "'v' line needs 3 numbers"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "integers"),
])
def test_bad_obj_files(tmp_path, text, match):
    (tmp_path / "bad.obj").write_text(text)
    with pytest.raises(FormatError, match=f"bad.obj.*{match}|{match}"):
        load_obj(tmp_path / "bad.obj")
    with pytest.raises(FormatError, match="cannot read"):
        load_obj(tmp_path / "missing.obj")


def test_folder_round_trip_with_correctives(tmp_path, rng):
    rig = tiny_rig(rng)
    paths = export_obj_folder(rig, tmp_path / "objs")
    assert (tmp_path / "objs" / "jawOpen+mouthFunnel.obj").is_file()
    assert (tmp_path / "objs" / "jawOpen+mouthFunnel+eyeBlink_L.obj") == paths["jawOpen+mouthFunnel+eyeBlink_L"]
    back = import_obj_folder(tmp_path / "objs", units="cm")
    order = [back.shape_names.index(n) for n in rig.shape_names]  # files come back sorted by name
    np.testing.assert_allclose(back.neutral, rig.neutral, atol=1e-7)
    np.testing.assert_allclose(back.shape_deltas[order], rig.shape_deltas, atol=1e-7)
    assert back.num_correctives == 2
    np.testing.assert_array_equal(back.uv_faces, rig.uv_faces)
    np.testing.assert_array_equal(back.landmark_vertices, rig.landmark_vertices)
    assert back.landmark_scheme == "test3" and back.material_names == rig.material_names
    w = rng.uniform(size=(4, 3))
    w_back = np.empty_like(w)
    w_back[:, order] = w
    np.testing.assert_allclose(evaluate_rig(back, w_back), evaluate_rig(rig, w), atol=1e-6)


def test_corrective_delta_is_sculpt_minus_linear_sum(tmp_path, rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    folder = tmp_path / "objs"
    export_obj_folder(rig, folder)
    sculpt = rng.normal(size=rig.neutral.shape)
    save_obj(ObjMesh(sculpt, rig.faces), folder / "jawOpen+mouthFunnel.obj")
    back = import_obj_folder(folder)
    ja, mf = back.shape_index("jawOpen"), back.shape_index("mouthFunnel")
    np.testing.assert_array_equal(back.corrective_keys, [[ja, mf, -1, -1]])
    expected = sculpt - rig.neutral - rig.shape_deltas[0] - rig.shape_deltas[1]
    np.testing.assert_allclose(back.corrective_deltas[0], expected, atol=1e-6)
    w = np.zeros(3)
    w[[ja, mf]] = 1
    np.testing.assert_allclose(evaluate_rig(back, w), sculpt, atol=1e-6)


def test_topology_mismatch_names_the_file(tmp_path, rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    folder = tmp_path / "objs"
    export_obj_folder(rig, folder)
    save_obj(ObjMesh(rig.neutral[:5], rig.faces[:2]), folder / "jawOpen.obj")
    with pytest.raises(FormatError, match=r"jawOpen\.obj: has 5 vertices, the neutral has 6"):
        import_obj_folder(folder)
    save_obj(ObjMesh(rig.neutral, rig.faces[::-1]), folder / "jawOpen.obj")
    with pytest.raises(FormatError, match=r"jawOpen\.obj: face list differs"):
        import_obj_folder(folder)


def test_folder_errors(tmp_path, rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    with pytest.raises(FormatError, match="no neutral mesh 'neutral.obj'"):
        import_obj_folder(tmp_path)
    folder = tmp_path / "objs"
    export_obj_folder(rig, folder)
    with pytest.raises(FormatError, match="units must be one of"):
        import_obj_folder(folder, units="inch")
    save_obj(ObjMesh(rig.neutral, rig.faces), folder / "jawOpen+tongueOut.obj")
    with pytest.raises(FormatError, match=r"jawOpen\+tongueOut\.obj.*unknown: tongueOut"):
        import_obj_folder(folder)
    (folder / "jawOpen+tongueOut.obj").unlink()
    (folder / "landmarks.txt").write_text("# ids\n0 1\n99\n")
    with pytest.raises(FormatError, match=r"landmarks\.txt: landmark vertex ids must lie in \[0, 6\)"):
        import_obj_folder(folder)
    (folder / "landmarks.txt").write_text("# ids\n0 1 # nose\n5\n")
    back = import_obj_folder(folder, landmark_scheme="three")
    np.testing.assert_array_equal(back.landmark_vertices, [0, 1, 5])
    assert back.landmark_scheme == "three"
    (folder / "landmarks.json").write_text(json.dumps({"vertices": "x"}))
    with pytest.raises(FormatError, match="landmarks.json"):
        import_obj_folder(folder)
    with pytest.raises(FormatError, match="cannot be an OBJ file name"):
        export_obj_folder(rig.replace(shape_names=("a/b", "c", "d")), tmp_path / "x")


def test_units_are_recorded(tmp_path, rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    export_obj_folder(rig, tmp_path / "objs")
    assert import_obj_folder(tmp_path / "objs", units="mm").units == "mm"


@pytest.mark.slow
def test_ict_face_folder_round_trip(tmp_path, ict_face_rig):
    rig = ict_face_rig.replace(shape_deltas=ict_face_rig.shape_deltas[:4], shape_names=ict_face_rig.shape_names[:4])
    export_obj_folder(rig, tmp_path / "ict")
    back = import_obj_folder(tmp_path / "ict")
    np.testing.assert_allclose(back.neutral, rig.neutral, atol=1e-6)
    np.testing.assert_array_equal(back.faces, rig.faces)
    np.testing.assert_array_equal(back.uv_faces, rig.uv_faces)
    np.testing.assert_array_equal(back.face_material, rig.face_material)
    np.testing.assert_allclose(back.shape_deltas, rig.shape_deltas[np.argsort(rig.shape_names)], atol=1e-5)
