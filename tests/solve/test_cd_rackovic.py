"""Rackovic et al. benchmark: their figures from their predictions, and our joint optimum (needs ../shared)."""

import json

import numpy as np
import pytest

from facecap.solve import CDConfig, cd_objective, solve_cd
from facecap.testing.cd_metrics import load_rackovic_problem, solve_metrics
from tests.conftest import shared_path

BENCH = ("bench", "rackovic")
PAPER = CDConfig(lambda_l1=1.0, lambda_smooth=1.0)  # the paper's defaults, as in baseline_results.json


def _problem(frames):
    basis, W_true = load_rackovic_problem(shared_path(*BENCH, "rackovic_synthetic_seed0.npz"))
    W_true = W_true[:frames]
    return basis, W_true, basis.evaluate(W_true)


@pytest.mark.parametrize("frames, pred_file, key", [(20, "pred_weights.npy", "metrics_train20"),
                                                    (100, "pred_weights_train100.npy", "metrics_train100")])
def test_reproduces_their_metrics(frames, pred_file, key):
    baseline = json.loads(shared_path(*BENCH, "baseline_results.json").read_text())[key]
    basis, W_true, Y = _problem(frames)
    pred = np.load(shared_path(*BENCH, pred_file))
    assert cd_objective(basis, pred, Y, PAPER) == pytest.approx(baseline["objective_pred"]["J_code_scaled"], rel=1e-9)
    assert cd_objective(basis, W_true, Y, PAPER) == pytest.approx(baseline["objective_gt"]["J_code_scaled"], rel=1e-9)
    m = solve_metrics(basis, pred, Y, W_true)
    assert m.mesh_error_mean == pytest.approx(baseline["mesh_error_mean_per_frame"]["mean"], rel=1e-9)
    assert m.mesh_error_max == pytest.approx(baseline["mesh_error_max_per_frame"]["mean"], rel=1e-9)
    assert m.roughness_per_controller == pytest.approx(baseline["roughness_per_controller"]["mean"], rel=1e-9)
    assert m.cardinality == pytest.approx(baseline["cardinality_per_frame"]["mean"], rel=1e-9)
    assert m.weight_rmse == pytest.approx(baseline["weights_vs_gt"]["rmse"], rel=1e-9)


def test_joint_solve_reaches_best_optimum_20_frames():
    baseline = json.loads(shared_path(*BENCH, "baseline_results.json").read_text())["diagnostics_optimality"]["train20"]
    basis, _, Y = _problem(20)
    result = solve_cd(basis, Y, PAPER)
    assert result.objective <= baseline["J_joint_optimum_LBFGSB"] * 1.001
    assert result.objective < baseline["J_upstream"]


def test_interval_mode_matches_their_protocol_20_frames():
    baseline = json.loads(shared_path(*BENCH, "baseline_results.json").read_text())["diagnostics_optimality"]["train20"]
    basis, _, Y = _problem(20)
    result = solve_cd(basis, Y, CDConfig(lambda_l1=1.0, lambda_smooth=1.0, interval=10, tol=1e-10))
    assert result.objective == pytest.approx(baseline["J_interval_sequential_optimum"], rel=1e-5)
