"""Is a rig in the units it says? Its face's size against a take's landmarks or a mesh sequence.

A rig whose npz says mm but holds cm is ten times too small for the world it is fitted in, and
nothing else in a fit says so: the weights come out wrong. A face's size here is the RMS distance of
its points from their centroid: the rig's landmark vertices at the neutral against the same landmarks
triangulated from a take, or the rig's neutral against each target mesh. Expression, identity and
triangulation noise change it by a fraction; a unit mistake by a power of ten. So the ratio is rounded
to the nearest power of ten (in log scale: beyond √10 ≈ 3.2 either way is nearer 10 than 1), and any
power but 10⁰ is an error that says which unit the numbers are probably in.
"""

import logging
import math

import numpy as np

from facecap.errors import FacecapError, ShapeError
from facecap.rig.model import Rig
from facecap.units import UNITS_IN_MM, unit_scale

__all__ = ["rms_radius", "check_rig_scale", "check_mesh_scale"]

log = logging.getLogger(__name__)

MIN_POINTS = 5  # a frame's size needs this many triangulated landmarks


def rms_radius(points: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """[...] RMS distance of ``points`` [..., N, 3] from their centroid, over the points where ``mask``
    [..., N] (default: all); NaN where no point is masked in."""
    points = np.asarray(points, dtype=np.float64)
    m = np.ones(points.shape[:-1]) if mask is None else np.asarray(mask, dtype=np.float64)
    x = np.where(m[..., None] > 0, points, 0.0)
    count = m.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (m[..., None] * x).sum(-2) / count[..., None]
        return np.sqrt((m * ((x - centroid[..., None, :]) ** 2).sum(-1)).sum(-1) / count)


def _power_of_ten(ratio: float) -> int:
    """The power of ten nearest ``ratio`` in log scale: 0 for ratios within [1/√10, √10]."""
    return int(round(math.log10(ratio)))


def _probable_unit(units_in_mm: float) -> str | None:
    """The unit whose length in mm is ``units_in_mm`` (to rounding), or None when none is."""
    return next((u for u, mm in UNITS_IN_MM.items() if math.isclose(mm, units_in_mm, rel_tol=1e-6)), None)


def check_rig_scale(rig: Rig, landmarks_3d: np.ndarray, units: str, source: str = "the take") -> float:
    """Check the rig's units against a take's triangulated landmarks; returns the size ratio take / rig.

    Args:
        rig: in its own units; its ``landmark_vertices`` [L] follow the landmarks' order.
        landmarks_3d: [T, L, 3] (or [L, 3]) triangulated landmarks in ``units``, NaN where a point did not
            triangulate (as :class:`facecap.fit.init.Initialisation` holds them).
        units: the landmarks' unit (the calibration's).
        source: what the landmarks come from, for the message.
    Returns:
        The median over frames (with at least MIN_POINTS landmarks) of the face's size in the take over
        the rig's, both in mm: about 1 when the units are right. NaN when no frame has enough points, and
        then nothing is checked.
    Raises:
        FacecapError: the ratio is nearer 10, 100, ... (or 1/10, ...) than 1; the message says which unit
            the rig's numbers probably are in.
    """
    if rig.landmark_vertices is None:
        raise FacecapError("the rig has no landmark_vertices: its scale cannot be checked against landmarks")
    points = np.asarray(landmarks_3d, dtype=np.float64)
    points = points[None] if points.ndim == 2 else points
    if points.ndim != 3 or points.shape[1:] != (len(rig.landmark_vertices), 3):
        raise ShapeError(f"landmarks_3d must have shape [T, {len(rig.landmark_vertices)}, 3] (the rig's "
                         f"landmarks), got {list(np.shape(landmarks_3d))}")
    seen = np.isfinite(points).all(-1)                                   # [T, L]
    frames = seen.sum(-1) >= MIN_POINTS
    if not frames.any():
        log.warning("the rig's units cannot be checked: no frame of %s has %d triangulated landmarks", source,
                    MIN_POINTS)
        return math.nan
    rig_mm = rig.neutral[rig.landmark_vertices] * unit_scale(rig.units, "mm")
    take_mm = rms_radius(points[frames], seen[frames]) * unit_scale(units, "mm")
    ratio = float(np.median(take_mm / rms_radius(np.broadcast_to(rig_mm, points[frames].shape), seen[frames])))
    k = _power_of_ten(ratio)
    log.info("the take's face is %.3g times the rig's (units: rig %s, calibration %s)", ratio, rig.units, units)
    if k == 0:
        return ratio
    size = "smaller" if k > 0 else "larger"
    unit = _probable_unit(UNITS_IN_MM[rig.units] * 10.0 ** k)
    guess = (f"its numbers are probably in {unit}, not {rig.units}: set the rig's 'units' (e.g. facecap rig "
             f"import-obj --units {unit})" if unit else
             f"its numbers are about 10^{k} {rig.units}, which is none of {', '.join(UNITS_IN_MM)}")
    raise FacecapError(f"the rig's face is {ratio if k > 0 else 1 / ratio:.3g} times {size} than the face "
                       f"triangulated from {source} (rig in {rig.units}, calibration in {units}): {guess}; or the "
                       f"calibration's units are wrong")


def check_mesh_scale(rig: Rig, meshes: np.ndarray, source: str = "the meshes") -> float:
    """Check that target meshes [T, V, 3] are in the rig's units; returns the size ratio meshes / rig.

    The ratio is the median over frames of each mesh's size over the rig's neutral's (all vertices).
    Raises FacecapError when it is nearer a power of ten other than 1, saying which unit the meshes
    are probably in.
    """
    meshes = np.asarray(meshes, dtype=np.float64)
    ratio = float(np.median(rms_radius(meshes) / rms_radius(rig.neutral)))
    k = _power_of_ten(ratio)
    if k == 0:
        return ratio
    unit = _probable_unit(UNITS_IN_MM[rig.units] / 10.0 ** k)
    guess = (f"they are probably in {unit}" if unit else
             f"they are about 10^{-k} {rig.units}, which is none of {', '.join(UNITS_IN_MM)}")
    raise FacecapError(f"{source} are {ratio:.3g} times the size of the rig's neutral: {guess}, the rig in "
                       f"{rig.units}. Give the meshes in the rig's units")
