"""End-to-end: facecap rig info / import-obj / export-obj on a tiny rig in tmp_path."""

import numpy as np

from facecap.cli import main
from facecap.rig import Rig, load_rig, save_rig


def _rig(rng) -> Rig:
    V = 5
    return Rig(units="cm", neutral=rng.normal(size=(V, 3)), faces=np.array([[0, 1, 2], [2, 3, 4]], np.int32),
               shape_names=("jawOpen", "mouthFunnel"), shape_deltas=rng.normal(size=(2, V, 3)),
               corrective_keys=np.array([[0, 1, -1, -1]], np.int32), corrective_deltas=rng.normal(size=(1, V, 3)),
               identity_deltas=np.zeros((0, V, 3)), face_material=np.array([0, 1], np.int16),
               material_names=("skin", "film"), material_opaque=np.array([True, False]),
               landmark_scheme="two", landmark_vertices=np.array([1, 4], np.int32))


def test_rig_commands_round_trip(tmp_path, rng, capsys):
    rig = _rig(rng)
    save_rig(rig, tmp_path / "rig.npz")
    assert main(["rig", "info", str(tmp_path / "rig.npz")]) == 0
    out = capsys.readouterr().out
    for text in ("units: cm", "vertices: 5", "shapes: 2", "correctives: jawOpen+mouthFunnel", "landmarks: 2 (two)",
                 "film: 1 triangles, see-through"):
        assert text in out
    assert main(["rig", "export-obj", str(tmp_path / "rig.npz"), "--out", str(tmp_path / "objs")]) == 0
    assert sorted(p.name for p in (tmp_path / "objs").iterdir()) == [
        "jawOpen+mouthFunnel.obj", "jawOpen.obj", "landmarks.json", "mouthFunnel.obj", "neutral.obj", "run.json"]
    assert main(["rig", "import-obj", str(tmp_path / "objs"), "--out", str(tmp_path / "back.npz"),
                 "--units", "mm"]) == 0
    back = load_rig(tmp_path / "back.npz")
    assert back.units == "mm" and back.shape_names == rig.shape_names and back.material_names == ("skin", "film")
    np.testing.assert_allclose(back.corrective_deltas, rig.corrective_deltas, atol=1e-5)
    np.testing.assert_array_equal(back.landmark_vertices, rig.landmark_vertices)


def test_rig_command_errors_are_clean(tmp_path, capsys):
    assert main(["rig", "info", str(tmp_path / "none.npz")]) == 2
    assert "rig file not found" in capsys.readouterr().err
    (tmp_path / "objs").mkdir()
    assert main(["rig", "import-obj", str(tmp_path / "objs"), "--out", str(tmp_path / "r.npz")]) == 2
    assert "no neutral mesh 'neutral.obj'" in capsys.readouterr().err


def test_rig_decimate_writes_a_sparse_rig(tmp_path, capsys):
    from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
    rig = build_demo_head(DemoHeadConfig(resolution=0.5, texture_size=32))
    save_rig(rig, tmp_path / "rig.npz")
    assert main(["rig", "decimate", str(tmp_path / "rig.npz"), "--vertices", "1000", "--out",
                 str(tmp_path / "sparse.npz")]) == 0
    sparse = load_rig(tmp_path / "sparse.npz")
    assert 990 <= sparse.num_vertices <= 1000                # the demo head's face region is all of it
    assert f"wrote {tmp_path / 'sparse.npz'}: {sparse.num_vertices} vertices" in capsys.readouterr().out
    assert main(["rig", "decimate", str(tmp_path / "rig.npz"), "--vertices", str(rig.num_vertices), "--out",
                 str(tmp_path / "none.npz")]) == 2
    assert "face region has" in capsys.readouterr().err and not (tmp_path / "none.npz").exists()
