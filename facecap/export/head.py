"""The head's motion as delivered: in a frame fixed to the performer, with Euler angles continuous in time.

A fit's head pose maps head (rig) space to the calibration's world, whose axes are whatever the
calibration chose (``facecap calibrate`` puts them at the first camera: OpenCV, y down, z into the
scene). Animators want the head's motion relative to the performer's own rest pose instead. The
*performer frame* is the rig's own axes (y up, z where the face looks, x to the performer's left)
placed at the head's rest pose, which is the median pose of the take:

- orientation: the chordal L1 median of the head rotations (Weiszfeld's iteration on the Frobenius
  distance, projected onto SO(3) by SVD; Hartley et al., "Rotation Averaging", IJCV 2013), started
  from the chordal L2 mean. A median ignores the frames where the head turns away, so a take that
  mostly looks ahead has angles near 0 when it does;
- origin: the per-axis median of the head's position, measured along the rest orientation's axes.

Both are equivariant: expressing the same take in another world frame (a y-up world or the first
camera's) gives the same rest pose relative to the head, and the same performer-frame curves.
A head pose ``(R, t)`` becomes ``(R0^T R, R0^T (t - t0))`` for the rest pose ``(R0, t0)``.
"""

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from facecap.animation import Animation
from facecap.checks import check_shape

__all__ = ["HeadFrame", "RestPose", "rest_pose", "in_performer_frame", "delivered_motion", "continuous_euler"]

log = logging.getLogger(__name__)

HeadFrame = Literal["performer", "world"]

_MEDIAN_ITERATIONS = 50
_MEDIAN_TOLERANCE = 1e-12       # stop when the median moves less than this (Frobenius)
_DISTANCE_FLOOR = 1e-9          # Weiszfeld's weight 1/d is capped at 1/this for a frame at the median


@dataclass(frozen=True)
class RestPose:
    """The performer frame in world coordinates: ``X_world = R @ X_performer + t``.

    Attributes:
        R: [3, 3] float64 rotation (the median head rotation).
        t: [3] float64 translation, in the animation's units.
    """

    R: np.ndarray
    t: np.ndarray


def _project_to_rotation(M: np.ndarray) -> np.ndarray:
    """The rotation nearest ``M`` [3, 3] in the Frobenius norm (the SVD's polar factor, det +1)."""
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def _median_rotation(R: np.ndarray) -> np.ndarray:
    """Chordal L1 median of [T, 3, 3] rotations, from their chordal L2 mean by Weiszfeld's iteration."""
    median = _project_to_rotation(R.sum(0))
    for _ in range(_MEDIAN_ITERATIONS):
        distance = np.linalg.norm(R - median, axis=(1, 2))
        weights = 1.0 / np.maximum(distance, _DISTANCE_FLOOR)
        updated = _project_to_rotation(np.einsum("t,tij->ij", weights, R))
        moved = np.linalg.norm(updated - median)
        median = updated
        if moved < _MEDIAN_TOLERANCE:
            break
    return median


def rest_pose(anim: Animation) -> RestPose:
    """The head's rest pose over the take: median rotation, per-axis median position along its axes."""
    R0 = _median_rotation(anim.R)
    along = anim.t @ R0                                        # [T, 3]: R0^T t per frame
    return RestPose(R=R0, t=R0 @ np.median(along, axis=0))


def in_performer_frame(anim: Animation, rest: RestPose | None = None) -> Animation:
    """``anim`` with its head pose relative to ``rest`` (default: :func:`rest_pose` of ``anim``)."""
    rest = rest_pose(anim) if rest is None else rest
    check_shape(rest.R, "3 3", "rest.R")
    check_shape(rest.t, "3", "rest.t")
    R = np.einsum("ji,tjk->tik", rest.R, anim.R)
    t = (anim.t - rest.t) @ rest.R
    return replace(anim, R=R, t=t)


def delivered_motion(anim: Animation, head_frame: HeadFrame) -> tuple[Animation, RestPose | None]:
    """The animation whose head pose the delivery files carry, in the performer frame (with its rest pose)
    or in the calibration's world (rest pose None)."""
    if head_frame == "world":
        return anim, None
    if head_frame != "performer":
        raise ValueError(f"head_frame must be 'performer' or 'world', got {head_frame!r}")
    rest = rest_pose(anim)
    angle = np.degrees(np.arccos(np.clip((np.trace(rest.R) - 1) / 2, -1.0, 1.0)))
    log.info("performer frame: the rest pose is %.1f° from the world's axes, at %s %s", angle,
             np.array2string(rest.t, precision=1), anim.units)
    return in_performer_frame(anim, rest), rest


def continuous_euler(angles: np.ndarray) -> np.ndarray:
    """[T, 3] Tait-Bryan angles (radians) made continuous in time, each frame's rotation unchanged.

    Each rotation has two angle triples, ``(a, b, c)`` and ``(a + pi, pi - b, c + pi)``, each up to
    multiples of 2 pi. Frame by frame, the one nearest the previous frame's is kept, so curves never
    jump by a turn (a nod through 180° reads 179.8°, 180.2°, not 179.8°, -179.8°) and a pass near
    gimbal lock does not flip two angles by 180°. The first frame keeps ``|b| <= pi/2``.
    """
    angles = np.asarray(angles, dtype=np.float64)
    check_shape(angles, "T 3", "angles")
    out = angles.copy()
    twin = np.stack([angles[:, 0] + np.pi, np.pi - angles[:, 1], angles[:, 2] + np.pi], axis=1)
    candidates = np.stack([angles, twin], axis=1)                              # [T, 2, 3]
    for i in range(1, len(out)):
        shifted = candidates[i] + 2 * np.pi * np.round((out[i - 1] - candidates[i]) / (2 * np.pi))
        out[i] = shifted[np.argmin(np.linalg.norm(shifted - out[i - 1], axis=1))]
    return out
