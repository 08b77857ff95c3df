"""``facecap solve`` end to end on a tiny rig, and the sequence helpers behind it."""

import re

import numpy as np
import pytest

from facecap.animation import load_animation_json
from facecap.cli import main
from facecap.errors import FacecapError, FormatError, ShapeError
from facecap.export import write_mesh_sequence
from facecap.geometry.rotations import rigid_procrustes
from facecap.rig import Rig, evaluate_rig, save_rig
from facecap.solve.sequence import SolveConfig, load_target_meshes, solve_mesh_sequence

EXACT = ["--set", "cd.lambda_l1=0", "--set", "cd.lambda_smooth=0", "--set", "cd.tol=1.0e-14",
         "--set", "cd.max_sweeps=500"]


def tiny_rig(rng) -> Rig:
    V, K = 30, 4
    deltas = np.zeros((K, V, 3))
    deltas[:, 10:] = rng.normal(size=(K, V - 10, 3))  # vertices 0..9 never move: the "skull"
    return Rig(units="mm", neutral=rng.normal(scale=10.0, size=(V, 3)),
               faces=np.array([[0, 1, 2], [2, 3, 4]], np.int32),
               shape_names=("jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft"), shape_deltas=deltas,
               corrective_keys=np.array([[0, 1, -1, -1]], np.int32),
               corrective_deltas=deltas[:1] * rng.normal(size=(1, V, 3)),
               identity_deltas=np.zeros((0, V, 3)))


def weights(T, K):
    t = np.arange(T)[:, None]
    return np.clip(0.5 + 0.45 * np.sin(t / 3.0 + np.arange(K)), 0, 1)


@pytest.mark.parametrize("as_obj", [False, True])
def test_solve_command_end_to_end(tmp_path, rng, as_obj):
    rig = tiny_rig(rng)
    save_rig(rig, tmp_path / "rig.npz")
    W = weights(8, rig.num_shapes)
    meshes = evaluate_rig(rig, W)
    src = write_mesh_sequence(meshes, rig.faces, tmp_path / ("objs" if as_obj else "meshes.npz"), as_obj=as_obj)
    out = tmp_path / "out"
    assert main(["solve", "--rig", str(tmp_path / "rig.npz"), "--meshes", str(src), "--out", str(out), *EXACT]) == 0
    anim = load_animation_json(out / "animation.json")
    np.testing.assert_allclose(anim.weights, W, atol=1e-5)
    np.testing.assert_allclose(anim.R, np.broadcast_to(np.eye(3), (8, 3, 3)))
    for name in ("animation.csv", "weights.png", "config.yaml", "meshes_head.npz"):
        assert (out / name).exists()


def test_solve_command_align(tmp_path, rng):
    rig = tiny_rig(rng)
    save_rig(rig, tmp_path / "rig.npz")
    W = weights(5, rig.num_shapes)
    R_true, _, _ = rigid_procrustes(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))
    world = evaluate_rig(rig, W) @ R_true.T + np.array([1.0, -2.0, 3.0])
    np.savez(tmp_path / "meshes.npz", vertices=world)
    out = tmp_path / "out"
    args = ["solve", "--rig", str(tmp_path / "rig.npz"), "--meshes", str(tmp_path / "meshes.npz"), "--out", str(out),
            "--align", "--set", "stable_fraction=0.3", *EXACT]
    assert main(args) == 0
    anim = load_animation_json(out / "animation.json")
    np.testing.assert_allclose(anim.R, np.broadcast_to(R_true, (5, 3, 3)), atol=1e-9)
    np.testing.assert_allclose(anim.t, np.broadcast_to([1.0, -2.0, 3.0], (5, 3)), atol=1e-9)
    np.testing.assert_allclose(anim.weights, W, atol=1e-5)


def test_solve_command_reports_bad_input(tmp_path, rng, capsys):
    rig = tiny_rig(rng)
    save_rig(rig, tmp_path / "rig.npz")
    np.savez(tmp_path / "meshes.npz", vertices=np.zeros((3, 7, 3)))
    assert main(["solve", "--rig", str(tmp_path / "rig.npz"), "--meshes", str(tmp_path / "meshes.npz"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "meshes must have shape" in capsys.readouterr().err


def test_sequence_guards(tmp_path, rng):
    with pytest.raises(FormatError, match="no .obj files"):
        load_target_meshes(tmp_path)
    np.savez(tmp_path / "bad.npz", verts=np.zeros((2, 3, 3)))
    with pytest.raises(FormatError, match="expected an npz with key 'vertices'"):
        load_target_meshes(tmp_path / "bad.npz")
    np.savez(tmp_path / "flat.npz", vertices=np.zeros((2, 3)))
    with pytest.raises(FormatError, match=r"must be \[T, V, 3\]"):
        load_target_meshes(tmp_path / "flat.npz")
    rig = tiny_rig(rng)
    with pytest.raises(ShapeError, match="stable_fraction must lie"):
        solve_mesh_sequence(rig, evaluate_rig(rig, weights(3, 4)), SolveConfig(align=True, stable_fraction=0.0))


def test_sequence_rejects_empty_non_finite_and_wrongly_scaled_meshes(tmp_path, rng):
    rig = tiny_rig(rng)
    meshes = evaluate_rig(rig, weights(4, rig.num_shapes))
    with pytest.raises(ShapeError, match=r"no meshes to solve \(T = 0\)"):
        solve_mesh_sequence(rig, meshes[:0], SolveConfig())
    meshes[2, 5, 1] = np.nan
    with pytest.raises(FormatError, match=r"1 of the 4 meshes hold NaN or infinite coordinates \(first: mesh 2\)"):
        solve_mesh_sequence(rig, meshes, SolveConfig())
    cm = rig.replace(units="cm", neutral=rig.neutral / 10, shape_deltas=rig.shape_deltas / 10,
                     corrective_deltas=rig.corrective_deltas / 10)
    with pytest.raises(FacecapError, match="they are probably in mm, the rig in cm"):
        solve_mesh_sequence(cm, evaluate_rig(rig, weights(4, rig.num_shapes)), SolveConfig())


def test_solve_command_names_bad_mesh_files(tmp_path, rng, capsys):
    rig = tiny_rig(rng)
    save_rig(rig, tmp_path / "rig.npz")
    args = ["solve", "--rig", str(tmp_path / "rig.npz"), "--out", str(tmp_path / "out"), "--meshes"]
    np.savez(tmp_path / "empty.npz", vertices=np.zeros((0, rig.num_vertices, 3)))
    np.save(tmp_path / "array.npy", np.zeros((2, rig.num_vertices, 3)))
    (tmp_path / "objs").mkdir()
    write_mesh_sequence(evaluate_rig(rig, weights(2, rig.num_shapes)), rig.faces, tmp_path / "objs", as_obj=True)
    first = sorted((tmp_path / "objs").glob("*.obj"))[0]
    first.write_text("\n".join(first.read_text().splitlines()[1:]))          # one vertex fewer
    for meshes, message in [("empty.npz", "no meshes to solve"), ("array.npy", "expected an npz with key 'vertices'"),
                            ("objs", "frame_000001.obj: 30 vertices, but frame_000000.obj has 29")]:
        assert main([*args, str(tmp_path / meshes)]) == 2
        err = capsys.readouterr().err
        assert re.search(message, err), err
    assert not (tmp_path / "out").exists()

