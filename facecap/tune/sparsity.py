"""Which rig entries the tuning may change (Omens et al. 2025, section 10).

The tracking rig's parameters θ are the entries of the delta matrix ``D`` [n, K] (flattened
coordinates x0, y0, z0, x1, ... by shape columns; the blendshape form of eq. 4, ``v = D c``).
Section 10 restricts each expression's term of eq. 55 to the *non-zero* entries of the columns
of the controls that are not identically zero in its intended controls ``c_k``; entries that no
expression touches stay at their animation-rig values θ_R.
"""

from dataclasses import dataclass

import numpy as np

from facecap.checks import check_shape
from facecap.errors import ShapeError

__all__ = ["ThetaLayout", "active_controls", "nonzero_entries"]


def active_controls(controls: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Heaviside H(|c| - threshold) of section 10.2: [N, K] bool, True where a control is in use."""
    return np.abs(np.asarray(controls)) > threshold


def nonzero_entries(deltas: np.ndarray, tolerance: float) -> np.ndarray:
    """[n, K] bool: the rig entries treated as non-zero.

    A vertex counts for a shape when its offset length exceeds ``tolerance`` times that shape's
    largest offset; all three coordinates of the vertex are then free, so the tuned offset may
    turn, not only scale. Stored rigs carry tiny noise everywhere, hence a tolerance, not ``!= 0``.
    Matrices with fewer than 3 rows (toy examples) use the entries themselves.
    """
    n, K = deltas.shape
    if n < 3:
        return np.abs(deltas) > tolerance * np.abs(deltas).max(axis=0, keepdims=True)
    if n % 3:
        raise ShapeError(f"deltas must have 3 * V rows (flattened x, y, z), got {n}")
    length = np.linalg.norm(deltas.reshape(n // 3, 3, K), axis=1)
    return np.repeat(length > tolerance * length.max(axis=0, keepdims=True), 3, axis=0)


@dataclass(frozen=True)
class ThetaLayout:
    """The packing of the free rig entries θ into a vector, and each expression's share of it.

    Attributes:
        mask: [n, K] bool, the entries of ``D`` that θ holds (union over expressions).
        columns: [N, K] bool, for each expression the shape columns its term may change
            (section 10: the controls active in ``c_k``, intersected with the stage's columns).
    """

    mask: np.ndarray
    columns: np.ndarray

    @classmethod
    def from_columns(cls, deltas: np.ndarray, per_expression: np.ndarray, tolerance: float) -> "ThetaLayout":
        """Layout whose expression k may change the columns ``per_expression[k]`` ([N, K] bool)."""
        per_expression = np.asarray(per_expression, dtype=bool)
        mask = nonzero_entries(deltas, tolerance) & per_expression.any(axis=0)[None]
        return cls(mask=mask, columns=per_expression)

    @classmethod
    def build(cls, deltas: np.ndarray, controls: np.ndarray, tolerance: float,
              columns: np.ndarray | None = None, threshold: float = 0.0) -> "ThetaLayout":
        """Layout for ``deltas`` [n, K] and intended controls [N, K].

        ``columns`` [K] bool limits the optimised columns (e.g. a stage's primary controls);
        None allows every column. Expressions keep only their active controls' columns.
        """
        dims = check_shape(deltas, "n K", "deltas")
        check_shape(controls, f"N {dims['K']}", "controls")
        per_expr = active_controls(controls, threshold)
        if columns is not None:
            per_expr = per_expr & np.asarray(columns, dtype=bool)[None]
        return cls.from_columns(deltas, per_expr, tolerance)

    @property
    def size(self) -> int:
        return int(self.mask.sum())

    def pack(self, deltas: np.ndarray) -> np.ndarray:
        """θ [P] from a delta matrix [n, K]."""
        return deltas[self.mask]

    def unpack(self, theta: np.ndarray, base: np.ndarray) -> np.ndarray:
        """A delta matrix [n, K]: ``base`` with the θ entries replaced."""
        out = base.copy()
        out[self.mask] = theta
        return out

    def expression_mask(self, k: int) -> np.ndarray:
        """[n, K] bool: the entries expression ``k``'s term may change."""
        return self.mask & self.columns[k][None]
