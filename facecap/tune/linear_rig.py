"""The blendshape rig as a matrix, R(c; θ) = D c + E a(c) (Omens et al. 2025, eqs. 4 and 28).

Rig tuning needs the rig as a function of both its controls ``c`` and its parameters θ (the
entries of ``D``), with the Jacobian ∂R/∂c (eq. 28). Offsets are from the neutral, over
flattened coordinates (x0, y0, z0, x1, ...), float64, in the rig's units.
"""

from dataclasses import dataclass, replace

import numpy as np

from facecap.checks import check_shape
from facecap.solve.basis import DeltaBasis

__all__ = ["LinearRig"]


@dataclass(frozen=True)
class LinearRig(DeltaBasis):
    """The solver's :class:`DeltaBasis` seen as a function of its parameters θ (the shape offsets):
    rig tuning adds the paper's matrix examples, θ replacement and the Jacobian ∂R/∂c."""

    @classmethod
    def from_matrix(cls, deltas: np.ndarray) -> "LinearRig":
        """A rig without correctives: the matrix Â of the paper's linear examples (section 7)."""
        deltas = np.asarray(deltas, dtype=np.float64)
        check_shape(deltas, "n K", "deltas")
        return cls(deltas=deltas, corrective_deltas=np.zeros((deltas.shape[0], 0)),
                   corrective_keys=np.zeros((0, 4), dtype=np.int64))

    @property
    def num_vertices(self) -> int:
        """Vertices behind the n coordinates (n / 3), at least 1 for the paper's 3-row examples."""
        return max(self.num_coords // 3, 1)

    def with_deltas(self, deltas: np.ndarray) -> "LinearRig":
        """The same rig with other shape offsets (θ_T instead of θ_R)."""
        return replace(self, deltas=deltas)

    def jacobian(self, controls: np.ndarray) -> np.ndarray:
        """∂R/∂c at controls [K] (eq. 28 plus the correctives' product rule): [n, K]."""
        J = self.deltas.copy()
        keys = self.corrective_keys
        if keys.shape[0]:
            c = np.asarray(controls, dtype=np.float64)
            used = keys >= 0
            gathered = np.where(used, c[np.maximum(keys, 0)], 1.0)          # [C, 4]
            dact = np.zeros((keys.shape[0], self.num_shapes))
            for slot in range(keys.shape[1]):
                others = np.prod(np.delete(gathered, slot, axis=1), axis=1)
                rows = np.flatnonzero(used[:, slot])
                np.add.at(dact, (rows, keys[rows, slot]), others[rows])
            J += self.corrective_deltas @ dact
        return J
