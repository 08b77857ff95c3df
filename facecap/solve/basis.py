"""A rig reduced to flattened coordinates, with the Gram matrices the coordinate-descent solver reuses."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg.blas import dsyrk

from facecap.checks import check_shape
from facecap.errors import ShapeError
from facecap.rig.evaluate import corrective_activations
from facecap.rig.model import Rig

__all__ = ["DeltaBasis"]


@dataclass(frozen=True)
class DeltaBasis:
    """Shape and corrective offsets as columns over flattened coordinates (x0, y0, z0, x1, ...), float64.

    A mesh offset from the neutral is ``deltas @ w + corrective_deltas @ c(w)`` with corrective
    activations ``c_j(w) = prod_i w[corrective_keys[j, i]]`` over the used key slots (docs/formats.md §3).

    Attributes:
        deltas: [n, K] shape offsets, n = 3 * vertices, in the rig's units.
        corrective_deltas: [n, C] corrective offsets.
        corrective_keys: [C, 4] int shape indices driving each corrective; -1 = unused slot. Each
            corrective needs 2 to 4 distinct shapes, so it is affine in each single weight.
    """

    deltas: np.ndarray
    corrective_deltas: np.ndarray
    corrective_keys: np.ndarray

    def __post_init__(self) -> None:
        deltas = np.ascontiguousarray(self.deltas, dtype=np.float64)
        dims = check_shape(deltas, "n K", "deltas")
        cdeltas = np.asarray(self.corrective_deltas, dtype=np.float64).reshape(dims["n"], -1)
        keys = np.asarray(self.corrective_keys, dtype=np.int64).reshape(-1, 4)
        check_shape(cdeltas, f"{dims['n']} {keys.shape[0]}", "corrective_deltas")
        if keys.size and (keys.min() < -1 or keys.max() >= dims["K"]):
            raise ShapeError(f"corrective_keys must lie in [-1, {dims['K']}), got [{keys.min()}, {keys.max()}]")
        for row in keys:
            used = row[row >= 0]
            if len(used) < 2 or len(set(used.tolist())) != len(used):
                raise ShapeError(f"corrective_keys row {row.tolist()}: needs 2 to 4 distinct shapes")
        if not (np.isfinite(deltas).all() and np.isfinite(cdeltas).all()):
            raise ShapeError("deltas and corrective_deltas must be finite")
        object.__setattr__(self, "deltas", deltas)
        object.__setattr__(self, "corrective_deltas", np.ascontiguousarray(cdeltas))
        object.__setattr__(self, "corrective_keys", keys)

    @classmethod
    def from_rig(cls, rig: Rig, vertices: np.ndarray | None = None) -> "DeltaBasis":
        """The rig's shape and corrective offsets, on all vertices or on ``vertices`` ([N] indices)."""
        idx = slice(None) if vertices is None else np.asarray(vertices, dtype=np.int64)
        if vertices is not None and (idx.ndim != 1 or len(idx) == 0 or idx.min() < 0
                                     or idx.max() >= rig.num_vertices):
            raise ShapeError(f"vertices must be a non-empty [N] index array into {rig.num_vertices} vertices")
        K, C = rig.num_shapes, rig.num_correctives
        deltas = rig.shape_deltas[:, idx].reshape(K, -1).T
        return cls(deltas=deltas, corrective_deltas=rig.corrective_deltas[:, idx].reshape(C, deltas.shape[0]).T,
                   corrective_keys=rig.corrective_keys)

    @property
    def num_coords(self) -> int:
        return self.deltas.shape[0]

    @property
    def num_shapes(self) -> int:
        return self.deltas.shape[1]

    @property
    def num_correctives(self) -> int:
        return self.corrective_deltas.shape[1]

    @cached_property
    def columns(self) -> np.ndarray:
        """[n, K + C] shape columns then corrective columns."""
        return np.ascontiguousarray(np.hstack([self.deltas, self.corrective_deltas]))

    @cached_property
    def gram(self) -> np.ndarray:
        """[K + C, K + C] ``columns^T columns``: fidelity in Gram space never touches the n coordinates."""
        upper = dsyrk(1.0, self.columns.T)  # BLAS symmetric rank-k update: half the flops of A^T A
        return np.triu(upper) + np.triu(upper, 1).T

    @cached_property
    def magnitudes(self) -> np.ndarray:
        """[K] squared norms of the shape columns (the order in which coordinate descent visits them)."""
        return np.einsum("nk,nk->k", self.deltas, self.deltas)

    def activations(self, W: np.ndarray) -> np.ndarray:
        """[T, K + C] weights followed by corrective activations, for W [T, K]."""
        return np.hstack([W, corrective_activations(W, self.corrective_keys)])

    def evaluate(self, W: np.ndarray) -> np.ndarray:
        """[T, n] offsets from the neutral for weights W [T, K] (or [n] for [K])."""
        W = np.asarray(W, dtype=np.float64)
        single = W.ndim == 1
        W2 = W[None] if single else W
        check_shape(W2, f"T {self.num_shapes}", "weights")
        out = self.activations(W2) @ self.columns.T
        return out[0] if single else out
