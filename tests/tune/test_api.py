"""tune_rig on a reduced ICT Simon-Says set: held-out control error drops, the tracker's mesh fit holds."""

import numpy as np
import pytest

from facecap.errors import ConfigError, FormatError
from facecap.tune import ExpressionSet, TuneConfig, make_simon_says, tune_rig

TRAIN = ("jaw_open", "smile", "blink", "brow_raise", "pucker", "sneer")
HOLDOUT = ("happy_talking", "oo_talking")
VERTEX_STEP = 32  # ~300 vertices: CD works in Gram space, so this mostly saves the set-up


def _reduced_set(rig):
    rig = rig.subset(np.arange(0, rig.num_vertices, VERTEX_STEP))
    ex, _ = make_simon_says(rig)
    keep = [ex.names.index(n) for n in TRAIN + HOLDOUT]
    return rig, ExpressionSet(ex.shape_names, ex.controls[keep], ex.meshes[keep], tuple(ex.names[i] for i in keep),
                              ex.holdout[keep])


def _check_improvement(report):
    held = report["summary"]["holdout"]
    assert held["control_rmse_after"] < 0.85 * held["control_rmse_before"]
    assert held["tracking_mesh_rms_after"] < 1.10 * held["tracking_mesh_rms_before"]
    train = report["summary"]["train"]
    assert train["control_rmse_after"] < 0.8 * train["control_rmse_before"]


@pytest.mark.slow
def test_cd_tracker_tuning_improves_heldout_controls(ict_face_rig):
    rig, ex = _reduced_set(ict_face_rig)
    config = TuneConfig(stages=["primary", "spurious"])
    config.cd.max_sweeps = 40
    config.solver.max_iters = 5
    config.solver.dvhat = "none"
    result = tune_rig(rig, ex, config)
    _check_improvement(result.report)
    assert result.tracking_rig.shape_names == rig.shape_names
    assert np.array_equal(result.tracking_rig.neutral, rig.neutral)


def test_ls_tracker_tuning_with_broyden_improves_heldout_controls(ict_face_rig):
    rig, ex = _reduced_set(ict_face_rig)
    config = TuneConfig(tracker="ls", stages=["reduced", "primary", "spurious"])
    config.ls.box = False
    config.solver.max_iters = 6
    result = tune_rig(rig, ex, config)
    _check_improvement(result.report)
    assert [s["stage"] for s in result.report["stages"]] == ["reduced", "primary", "spurious"]


def test_guards(ict_face_rig):
    rig, ex = _reduced_set(ict_face_rig)
    with pytest.raises(ConfigError, match="unknown stage"):
        TuneConfig(stages=["warmup"])
    all_held = ExpressionSet(ex.shape_names, ex.controls, ex.meshes, ex.names, np.ones(len(ex.names), bool))
    with pytest.raises(FormatError, match="held out"):
        tune_rig(rig, all_held)
    with pytest.raises(FormatError, match="vertices"):
        tune_rig(rig.subset(np.arange(10)), ex)
