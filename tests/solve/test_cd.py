"""Coordinate-descent inverse rigging: objective, monotonicity, recovery, intervals, guards."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from facecap.errors import ConfigError, ShapeError
from facecap.rig import Rig, evaluate_rig
from facecap.solve import CDConfig, DeltaBasis, cd_objective, solve_cd
from facecap.solve.cd import SOLVER_BLAS_THREADS


def tiny_rig(rng, V=40, K=6, correctives=True) -> Rig:
    keys = np.array([[0, 1, -1, -1], [1, 2, 3, -1], [0, 2, 4, 5]], dtype=np.int32) if correctives \
        else np.zeros((0, 4), np.int32)
    C = len(keys)
    return Rig(units="mm", neutral=rng.normal(size=(V, 3)), faces=np.array([[0, 1, 2]], np.int32),
               shape_names=tuple(f"s{k}" for k in range(K)), shape_deltas=rng.normal(size=(K, V, 3)),
               corrective_keys=keys, corrective_deltas=0.5 * rng.normal(size=(C, V, 3)),
               identity_deltas=np.zeros((0, V, 3)))


def smooth_weights(rng, T, K):
    t = np.arange(T)[:, None]
    W = 0.5 + 0.4 * np.sin(t / rng.uniform(3, 8, K) + rng.uniform(0, 6, K))
    W[:, -1] = 0.0
    return np.clip(W, 0, 1)


def test_basis_evaluate_matches_evaluate_rig(rng):
    rig = tiny_rig(rng)
    W = rng.uniform(0, 1, (5, rig.num_shapes))
    basis = DeltaBasis.from_rig(rig)
    expected = (evaluate_rig(rig, W) - rig.neutral).reshape(5, -1)
    np.testing.assert_allclose(basis.evaluate(W), expected, atol=1e-12)
    verts = np.array([3, 7, 11])
    sub = DeltaBasis.from_rig(rig, vertices=verts)
    np.testing.assert_allclose(sub.evaluate(W), (evaluate_rig(rig, W, vertices=verts) - rig.neutral[verts])
                               .reshape(5, -1), atol=1e-12)


def test_objective_matches_formula_and_solver(rng):
    rig = tiny_rig(rng)
    basis = DeltaBasis.from_rig(rig)
    W = rng.uniform(0, 1, (8, rig.num_shapes))
    Y = rng.normal(size=(8, basis.num_coords))
    cfg = CDConfig(lambda_l1=0.3, lambda_smooth=0.7, max_sweeps=1)
    n, K = basis.num_coords, rig.num_shapes
    expected = (((evaluate_rig(rig, W) - rig.neutral).reshape(8, -1) - Y) ** 2).sum() / n \
        + 0.3 / K * W.sum() + 0.7 * sum(((W[t] - 2 * W[t + 1] + W[t + 2]) ** 2).sum() for t in range(6))
    assert cd_objective(basis, W, Y, cfg) == pytest.approx(expected, rel=1e-12)
    result = solve_cd(basis, Y, cfg, warm_start=W)
    assert result.history[0] == pytest.approx(expected, rel=1e-10)
    assert result.objective == pytest.approx(cd_objective(basis, result.weights, Y, cfg), rel=1e-10)


@pytest.mark.parametrize("correctives", [True, False])
def test_objective_never_increases(rng, correctives):
    rig = tiny_rig(rng, correctives=correctives)
    basis = DeltaBasis.from_rig(rig)
    Y = basis.evaluate(smooth_weights(rng, 30, rig.num_shapes)) + 0.3 * rng.normal(size=(30, basis.num_coords))
    result = solve_cd(basis, Y, CDConfig(lambda_l1=0.5, lambda_smooth=2.0, max_sweeps=30, tol=0))
    assert np.all(np.diff(result.history) <= 1e-12 * result.history[0])
    assert result.weights.min() >= 0 and result.weights.max() <= 1


@pytest.mark.parametrize("correctives", [True, False])
def test_recovers_ground_truth_without_noise(rng, correctives):
    rig = tiny_rig(rng, correctives=correctives)
    basis = DeltaBasis.from_rig(rig)
    W = smooth_weights(rng, 25, rig.num_shapes)
    result = solve_cd(basis, basis.evaluate(W), CDConfig(lambda_l1=0.0, lambda_smooth=0.0, max_sweeps=500,
                                                         tol=1e-14))
    np.testing.assert_allclose(result.weights, W, atol=1e-5)


def test_vertex_subset_and_fixed_mask(rng):
    rig = tiny_rig(rng, V=60)
    W = smooth_weights(rng, 10, rig.num_shapes)
    verts = np.arange(0, 60, 3)
    sub = DeltaBasis.from_rig(rig, vertices=verts)
    Y = (evaluate_rig(rig, W, vertices=verts) - rig.neutral[verts]).reshape(10, -1)
    cfg = CDConfig(lambda_l1=0.0, lambda_smooth=0.0, max_sweeps=500, tol=1e-14)
    np.testing.assert_allclose(solve_cd(sub, Y, cfg).weights, W, atol=1e-5)
    warm = np.full_like(W, 0.2)
    mask = np.zeros(rig.num_shapes, bool)
    mask[2] = True
    result = solve_cd(sub, Y, cfg, warm_start=warm, fixed_weights_mask=mask)
    np.testing.assert_array_equal(result.weights[:, 2], 0.2)


def test_interval_mode_carries_two_frames(rng):
    rig = tiny_rig(rng)
    basis = DeltaBasis.from_rig(rig)
    Y = basis.evaluate(smooth_weights(rng, 12, rig.num_shapes)) + 0.2 * rng.normal(size=(12, basis.num_coords))
    cfg = CDConfig(lambda_l1=0.2, lambda_smooth=3.0, interval=6, max_sweeps=400, tol=1e-13)
    result = solve_cd(basis, Y, cfg)
    first = solve_cd(basis, Y[:6], cfg.__class__(**{**cfg.__dict__, "interval": 0}))
    np.testing.assert_allclose(result.weights[:6], first.weights, atol=1e-6)
    # The second interval is the whole-sequence problem on frames 4..11 with frames 4, 5 frozen.
    warm = result.weights[4:].copy()
    mask = np.zeros((8, rig.num_shapes), bool)
    mask[:2] = True
    second = solve_cd(basis, Y[4:], cfg.__class__(**{**cfg.__dict__, "interval": 0}), warm_start=warm,
                      fixed_weights_mask=mask)
    np.testing.assert_allclose(result.weights[6:], second.weights[2:], atol=1e-6)
    assert result.objective == pytest.approx(cd_objective(basis, result.weights, Y, cfg), rel=1e-10)
    joint = solve_cd(basis, Y, cfg.__class__(**{**cfg.__dict__, "interval": 0}))
    assert joint.objective <= result.objective + 1e-9


def test_guards(rng):
    rig = tiny_rig(rng)
    basis = DeltaBasis.from_rig(rig)
    Y = np.zeros((4, basis.num_coords))
    with pytest.raises(ShapeError, match="targets must have shape"):
        solve_cd(basis, Y[:, :-1], CDConfig())
    with pytest.raises(ShapeError, match="non-finite"):
        solve_cd(basis, np.full_like(Y, np.nan), CDConfig())
    with pytest.raises(ShapeError, match="warm_start must have shape"):
        solve_cd(basis, Y, CDConfig(), warm_start=np.zeros((3, rig.num_shapes)))
    with pytest.raises(ShapeError, match="fixed_weights_mask must have shape"):
        solve_cd(basis, Y, CDConfig(), fixed_weights_mask=np.zeros(2, bool))
    with pytest.raises(ConfigError, match="lambda_l1 and lambda_smooth must be >= 0"):
        solve_cd(basis, Y, CDConfig(lambda_l1=-1.0))
    with pytest.raises(ConfigError, match="interval must be 0"):
        solve_cd(basis, Y, CDConfig(interval=2))
    with pytest.raises(ConfigError, match="max_sweeps must be >= 1"):
        solve_cd(basis, Y, CDConfig(max_sweeps=0))
    with pytest.raises(ConfigError, match="tol must be >= 0"):
        solve_cd(basis, Y, CDConfig(qp_tol=0.0))
    with pytest.raises(ShapeError, match="distinct shapes"):
        DeltaBasis(basis.deltas, basis.corrective_deltas[:, :1], np.array([[1, 1, -1, -1]]))
    with pytest.raises(ShapeError, match="corrective_keys must lie"):
        DeltaBasis(basis.deltas, basis.corrective_deltas[:, :1], np.array([[0, 99, -1, -1]]))
    with pytest.raises(ShapeError, match="vertices must be"):
        DeltaBasis.from_rig(rig, vertices=np.array([10_000]))


class _RecordingBasis(DeltaBasis):
    """A basis that records the BLAS thread counts in force whenever the solver asks for activations."""

    def activations(self, W: np.ndarray) -> np.ndarray:
        self.blas_threads.update(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return super().activations(W)


def test_solves_on_one_blas_thread_and_restores_the_callers(rng):
    rig = tiny_rig(rng)
    plain = DeltaBasis.from_rig(rig)
    basis = _RecordingBasis(plain.deltas, plain.corrective_deltas, plain.corrective_keys)
    Y = plain.evaluate(smooth_weights(rng, 12, rig.num_shapes))
    object.__setattr__(basis, "blas_threads", set())
    with threadpool_limits(limits=2, user_api="blas"):
        solve_cd(basis, Y, CDConfig())
        after = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    assert basis.blas_threads == {SOLVER_BLAS_THREADS}
    assert after == {2}
