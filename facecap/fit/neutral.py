"""A smooth per-vertex neutral correction, for rigs that come without identity modes.

The performer's neutral face is never exactly the rig's. Rigs with ``identity_deltas`` fit their
coefficients; for the others the fit adds modes of its own: polynomial deformation fields of the
head (x, y, z up to ``degree``, along each axis), with rigid motion projected out (the head pose
owns it) and orthonormalised over the sampled vertices. They then go through exactly the same
machinery as identity modes: shared by the take, estimated in the keyframe stage, kept small by
``loss.identity_prior``. Low-order fields are smooth by construction: widths, heights, depths,
tapers and bends of the face, not per-vertex noise.
"""

import numpy as np

from facecap.rig.model import Rig
from facecap.units import unit_scale

__all__ = ["smooth_neutral_modes", "with_neutral_correction"]

MODE_RMS_MM = 1.0          # each mode moves the sampled vertices by 1 mm RMS per unit coefficient
RANK_TOLERANCE = 1e-8      # relative singular value below which a field is a combination of others


def _rigid_fields(x: np.ndarray) -> np.ndarray:
    """[6, N*3] infinitesimal translations and rotations of the points ``x`` [N, 3]."""
    N = len(x)
    fields = np.zeros((6, N, 3))
    fields[0, :, 0] = fields[1, :, 1] = fields[2, :, 2] = 1.0
    for axis in range(3):
        fields[3 + axis] = np.cross(np.eye(3)[axis], x)
    return fields.reshape(6, -1)


def smooth_neutral_modes(rig: Rig, vertices: np.ndarray, degree: int) -> np.ndarray:
    """[M, V, 3] polynomial deformation modes of ``rig``, rigid-free and orthogonal over ``vertices``.

    Each mode moves ``vertices`` by MODE_RMS_MM RMS per unit coefficient.
    """
    centre = rig.neutral[vertices].mean(0)
    radius = np.sqrt(((rig.neutral[vertices] - centre) ** 2).sum(1).mean())
    x = (rig.neutral - centre) / radius                                      # [V, 3], a unit-sized head
    powers = [(i, j, k) for i in range(degree + 1) for j in range(degree + 1) for k in range(degree + 1)
              if 1 <= i + j + k <= degree]
    scalars = np.stack([x[:, 0] ** i * x[:, 1] ** j * x[:, 2] ** k for i, j, k in powers])   # [S, V]
    modes = (scalars[:, None, :, None] * np.eye(3)[None, :, None, :]).reshape(-1, rig.num_vertices * 3)
    rigid = _rigid_fields(x)                                                 # [6, V*3]
    sample_columns = (3 * np.asarray(vertices)[:, None] + np.arange(3)).ravel()
    rigid_part = np.linalg.lstsq(rigid[:, sample_columns].T, modes[:, sample_columns].T, rcond=None)[0]
    modes = modes - rigid_part.T @ rigid                                     # the head pose owns rigid motion
    U, S, _ = np.linalg.svd(modes[:, sample_columns], full_matrices=False)
    keep = S > RANK_TOLERANCE * S[0]
    orthonormal = (U[:, keep] / S[keep]).T @ modes                           # unit norm over the samples
    per_unit = MODE_RMS_MM * unit_scale("mm", rig.units) * np.sqrt(len(vertices))
    return (orthonormal * per_unit).reshape(-1, rig.num_vertices, 3)


def with_neutral_correction(rig: Rig, vertices: np.ndarray, degree: int) -> Rig:
    """``rig`` with :func:`smooth_neutral_modes` as its identity modes when it has none (else unchanged)."""
    if rig.num_identities or degree < 1:
        return rig
    return rig.replace(identity_deltas=smooth_neutral_modes(rig, vertices, degree))
