"""Expression files (npz and OBJ folder), the performer perturbation, and the section-10 layout."""

import json

import numpy as np
import pytest

from facecap.errors import FormatError
from facecap.tune import PerformerConfig, load_expressions, make_simon_says, save_expressions
from facecap.tune.simon_says import performer_rig
from facecap.tune.sparsity import ThetaLayout, nonzero_entries


@pytest.fixture
def small_rig(ict_face_rig):
    return ict_face_rig.subset(np.arange(0, ict_face_rig.num_vertices, 64))


def test_npz_round_trip(tmp_path, small_rig):
    ex, _ = make_simon_says(small_rig)
    save_expressions(ex, tmp_path / "e.npz")
    back = load_expressions(tmp_path / "e.npz")
    assert back.names == ex.names and back.shape_names == ex.shape_names
    np.testing.assert_array_equal(back.holdout, ex.holdout)
    np.testing.assert_allclose(back.meshes, ex.meshes)
    assert 15 <= len(ex.names) <= 20 and ex.holdout.sum() >= 3


def test_folder_format(tmp_path, small_rig):
    ex, _ = make_simon_says(small_rig)
    entries = []
    for k in range(2):
        lines = "\n".join(f"v {x} {y} {z}" for x, y, z in ex.meshes[k])
        (tmp_path / f"m{k}.obj").write_text(lines + "\nf 1 2 3\n")
        entries.append({"name": ex.names[k], "mesh": f"m{k}.obj", "holdout": k == 1,
                        "controls": {s: float(ex.controls[k, i]) for i, s in enumerate(ex.shape_names)
                                     if ex.controls[k, i]}})
    (tmp_path / "expressions.json").write_text(json.dumps({"shape_names": list(ex.shape_names),
                                                           "expressions": entries}))
    back = load_expressions(tmp_path)
    np.testing.assert_allclose(back.meshes, ex.meshes[:2])
    np.testing.assert_allclose(back.controls, ex.controls[:2])
    assert back.holdout.tolist() == [False, True]


def test_load_guards(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_expressions(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", controls=np.zeros((1, 2)))
    with pytest.raises(FormatError, match="'meshes' is missing"):
        load_expressions(tmp_path / "bad.npz")
    with pytest.raises(FormatError, match="expressions.json"):
        load_expressions(tmp_path)


def test_performer_is_seeded_and_close(small_rig):
    a = performer_rig(small_rig, PerformerConfig(seed=3))
    b = performer_rig(small_rig, PerformerConfig(seed=3))
    np.testing.assert_array_equal(a.shape_deltas, b.shape_deltas)
    rel = np.linalg.norm(a.shape_deltas - small_rig.shape_deltas) / np.linalg.norm(small_rig.shape_deltas)
    assert 0.05 < rel < 0.6


def test_layout_restricts_to_active_columns_and_nonzero_entries():
    deltas = np.zeros((6, 3))
    deltas[0:3, 0] = [1, 0, 0]          # vertex 0 moves in shape 0
    deltas[3:6, 1] = [0, 2, 0]          # vertex 1 moves in shape 1
    deltas[:, 2] = 1.0
    controls = np.array([[0.5, 0, 0], [0, 0.7, 0]])
    layout = ThetaLayout.build(deltas, controls, tolerance=1e-3)
    assert layout.mask[:, 2].sum() == 0                 # unused column stays at θ_R
    assert layout.mask[0:3, 0].all() and not layout.mask[3:6, 0].any()
    assert layout.size == 6
    theta = layout.pack(deltas) + 1
    assert (layout.unpack(theta, deltas)[layout.mask] == theta).all()
    assert nonzero_entries(deltas, 1e-3).sum() == 12
