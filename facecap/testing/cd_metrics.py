"""Quality metrics of solved weights, as the Rackovic et al. benchmark reports them, and its data set."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecap.checks import check_shape
from facecap.errors import FormatError
from facecap.solve.basis import DeltaBasis

__all__ = ["SolveMetrics", "solve_metrics", "load_rackovic_problem"]

CORRECTIVE_LEVELS = ((2, "bs1", "keys1"), (3, "bs2", "keys2"), (4, "bs3", "keys3"))  # (order, deltas, keys)


@dataclass(frozen=True)
class SolveMetrics:
    """Per-sequence summaries (lengths in the basis' units).

    Attributes:
        mesh_error_mean: mean over frames of the mean per-vertex Euclidean distance to the target.
        mesh_error_max: mean over frames of the max per-vertex distance.
        roughness_per_controller: mean over controllers of sum_t (second difference)^2.
        cardinality: mean over frames of #w > 0.
        weight_rmse: RMSE against ground-truth weights (NaN when none are given).
    """

    mesh_error_mean: float
    mesh_error_max: float
    roughness_per_controller: float
    cardinality: float
    weight_rmse: float


def solve_metrics(basis: DeltaBasis, W: np.ndarray, targets: np.ndarray,
                  W_true: np.ndarray | None = None) -> SolveMetrics:
    """Metrics of weights W [T, K] against targets [T, n] (offsets from the neutral, flattened xyz per vertex)."""
    W = np.asarray(W, dtype=np.float64)
    T = check_shape(W, f"T {basis.num_shapes}", "weights")["T"]
    check_shape(targets, f"{T} {basis.num_coords}", "targets")
    dist = np.linalg.norm((basis.evaluate(W) - targets).reshape(T, -1, 3), axis=-1)  # [T, V]
    rough = (np.diff(W, n=2, axis=0) ** 2).sum(axis=0) if T > 2 else np.zeros(W.shape[1])
    rmse = float(np.sqrt(((W - W_true) ** 2).mean())) if W_true is not None else float("nan")
    return SolveMetrics(mesh_error_mean=float(dist.mean(axis=1).mean()), mesh_error_max=float(dist.max(axis=1).mean()),
                        roughness_per_controller=float(rough.mean()), cardinality=float((W > 0).sum(axis=1).mean()),
                        weight_rmse=rmse)


def load_rackovic_problem(path: str | Path) -> tuple[DeltaBasis, np.ndarray]:
    """The benchmark's synthetic rig and ground-truth weights [N, m] from ``rackovic_synthetic_seed0.npz``.

    Its layout (README of the benchmark): ``deltas`` [n, m]; ``bs1/bs2/bs3`` [m_i, n] correctives of
    order 2, 3, 4 driven by ``keys1/keys2/keys3`` [m_i, order]; targets are ``basis.evaluate(weights)``.
    """
    try:
        data = np.load(path)
        deltas = data["deltas"]
        blocks, keys = [], []
        for order, bs, key in CORRECTIVE_LEVELS:
            k = np.full((data[key].shape[0], 4), -1, dtype=np.int64)
            k[:, :order] = data[key]
            blocks.append(data[bs])
            keys.append(k)
        weights = np.asarray(data["weights"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as err:
        raise FormatError(f"{path}: not a Rackovic benchmark npz ({err})") from err
    return DeltaBasis(deltas, np.vstack(blocks).T, np.vstack(keys)), weights
