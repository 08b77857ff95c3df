"""The performer's face as a mesh with morph targets: what animation.glb and animation.fbx carry.

A rig's mesh is ``neutral + identity + Σ w_k shape_k + Σ c_j(w) corrective_j`` (FORMATS.md §3).
DCC files have no identity modes and no corrective (combination) shapes, so:

- the identity is baked into the mesh: the performer's neutral;
- each corrective becomes a morph target of its own, named after its keys (``jawOpen_x_mouthClose``),
  whose weight curve is the product of its keys' weights, so the mesh equals the rig's at every frame.
"""

from dataclasses import dataclass

import numpy as np

from facecap.checks import check_shape
from facecap.rig.evaluate import corrective_activations
from facecap.rig.model import Rig

__all__ = ["MorphMesh", "CORRECTIVE_JOIN"]

CORRECTIVE_JOIN = "_x_"  # a corrective target's name joins its keys' names with this


@dataclass(frozen=True)
class MorphMesh:
    """A mesh and its morph targets, in head space.

    Attributes:
        vertices: [V, 3] float64 performer's neutral, in ``units``.
        faces: [F, 3] int32 triangles, counter-clockwise seen from outside.
        target_names: M names: the rig's shapes (possibly renamed), then its correctives.
        deltas: [M, V, 3] float64 offsets at weight 1, in ``units``.
        corrective_keys: [C, 4] int shape indices of each corrective (-1 unused), C = M - K.
        units: length unit of ``vertices`` and ``deltas``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    target_names: tuple[str, ...]
    deltas: np.ndarray
    corrective_keys: np.ndarray
    units: str

    @classmethod
    def from_rig(cls, rig: Rig, identity: np.ndarray | None = None,
                 shape_names: tuple[str, ...] | None = None) -> "MorphMesh":
        """The mesh of ``rig`` with ``identity`` ([I] coefficients of its identity modes) baked in.

        ``shape_names`` (default the rig's) names the shape targets; correctives are named from them.
        """
        names = rig.shape_names if shape_names is None else tuple(shape_names)
        if len(names) != rig.num_shapes:
            raise ValueError(f"MorphMesh.from_rig: {len(names)} shape names for a rig of {rig.num_shapes} shapes")
        vertices = rig.neutral.astype(np.float64)
        if identity is not None and len(identity):
            identity = np.asarray(identity, dtype=np.float64)
            check_shape(identity, f"{rig.num_identities}", "identity")
            vertices = vertices + np.einsum("i,ivc->vc", identity, rig.identity_deltas)
        keys = np.asarray(rig.corrective_keys)
        corrective_names = tuple(CORRECTIVE_JOIN.join(names[k] for k in row if k >= 0) for row in keys)
        deltas = np.concatenate([rig.shape_deltas, rig.corrective_deltas]).astype(np.float64)
        return cls(vertices=vertices, faces=np.asarray(rig.faces, dtype=np.int32),
                   target_names=names + corrective_names, deltas=deltas, corrective_keys=keys, units=rig.units)

    @property
    def num_shapes(self) -> int:
        """K: the targets that are the rig's shapes (the rest are correctives)."""
        return len(self.target_names) - len(self.corrective_keys)

    def target_weights(self, weights: np.ndarray) -> np.ndarray:
        """[T, M] morph weights of [T, K] shape weights: the weights, then the correctives' products."""
        weights = np.asarray(weights, dtype=np.float64)
        check_shape(weights, f"T {self.num_shapes}", "weights")
        return np.concatenate([weights, corrective_activations(weights, self.corrective_keys)], axis=1)

    def posed(self, weights: np.ndarray) -> np.ndarray:
        """[T, V, 3] head-space meshes at [T, K] shape weights."""
        return self.vertices + np.einsum("tm,mvc->tvc", self.target_weights(weights), self.deltas)
