"""The 68-point Multi-PIE / iBUG 300-W landmark embedding of the demo head.

Order (Sagonas et al., "300 Faces in-the-Wild Challenge", 2013): jaw line 0-16 from the subject's
right (-x) to left (+x), right brow 17-21 and left brow 22-26 (outer to inner, then inner to
outer), nose bridge 27-30 top to tip, nostril base 31-35 right to left, right eye 36-41 and left
eye 42-47 (clockwise in the image from the outer / inner corner), outer lip 48-59 from the right
corner over the upper lip, inner lip 60-67. Targets are (x, y) points on the designed features; each
is projected along -z onto the surface and snapped to the nearest vertex, the inner lip to the split mouth row's copies.
"""

import numpy as np

from facecap.rig.demo.sdf import (EYE_CENTRE, EYE_HALF_WIDTH, MOUTH_HALF_WIDTH, NOSE_TIP, head_sdf, lid_curve,
                                  lip_outline, mouth_line_y)
from facecap.rig.demo.surface import HeadMesh

__all__ = ["landmark_vertices", "NUM_LANDMARKS"]

NUM_LANDMARKS = 68
_JAW_HALF_WIDTH, _JAW_TOP, _CHIN_BOTTOM = 7.0, 3.4, -7.9  # cm; the jaw-line contour's design
_MARCH_FROM, _MARCH_TO, _MARCH_STEP = 16.0, -4.0, 0.02  # cm; the z range and step of the landmark rays


def _left_eye_xy() -> np.ndarray:
    """[6, 2] left eye 42-47: inner corner, two upper-lid points, outer corner, two lower-lid points."""
    cx, w = EYE_CENTRE[0], EYE_HALF_WIDTH
    xs = np.array([cx - w, cx - 0.35 * w, cx + 0.35 * w, cx + w, cx + 0.35 * w, cx - 0.35 * w])
    upper = np.array([True, True, True, True, False, False])
    ys = np.where(upper, lid_curve(xs, upper=True), lid_curve(xs, upper=False))
    return np.column_stack([xs, ys])


def _targets() -> np.ndarray:
    """[60, 2] (x, y) targets of landmarks 0-59 (the inner lip is placed separately)."""
    a = np.linspace(0.0, np.pi, 17)
    jaw = np.column_stack([-_JAW_HALF_WIDTH * np.cos(a), _JAW_TOP - (_JAW_TOP - _CHIN_BOTTOM) * np.sin(a) ** 1.5])
    brow_x = np.array([5.3, 4.5, 3.6, 2.6, 1.5])
    brow_y = np.array([5.0, 5.5, 5.75, 5.75, 5.5])
    brows = np.vstack([np.column_stack([-brow_x, brow_y]), np.column_stack([brow_x[::-1], brow_y[::-1]])])
    bridge = np.column_stack([np.zeros(4), np.linspace(3.8, NOSE_TIP[1], 4)])
    nostrils = np.column_stack([np.linspace(-1.2, 1.2, 5), [-0.95, -1.1, -1.2, -1.1, -0.95]])
    left_eye = _left_eye_xy()
    right_eye = left_eye[[3, 2, 1, 0, 5, 4]] * np.array([-1.0, 1.0])  # outer corner first, mirrored
    ux = np.array([-0.62, -0.25, 0.0, 0.25, 0.62]) * MOUTH_HALF_WIDTH
    upper = np.column_stack([ux, lip_outline(ux, upper=True)])
    lx = np.array([0.62, 0.3, 0.0, -0.3, -0.62]) * MOUTH_HALF_WIDTH
    lower = np.column_stack([lx, lip_outline(lx, upper=False)])
    corner_y = float(mouth_line_y(MOUTH_HALF_WIDTH))
    corners = np.array([[-MOUTH_HALF_WIDTH, corner_y], [MOUTH_HALF_WIDTH, corner_y]])
    outer_lip = np.vstack([corners[:1], upper, corners[1:], lower])
    return np.vstack([jaw, brows, bridge, nostrils, right_eye, left_eye, outer_lip])


def _front_most(vertices: np.ndarray, candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[L] index (into vertices) of the candidate nearest the front-most surface point at each (x, y).

    The surface point is found by marching a ray down -z through the SDF from in front of the face.
    """
    z = np.arange(_MARCH_FROM, _MARCH_TO, -_MARCH_STEP)
    points = np.concatenate([np.repeat(targets, len(z), axis=0), np.tile(z, len(targets))[:, None]], axis=1)
    inside = (head_sdf(points) < 0.0).reshape(len(targets), len(z))
    surface = np.column_stack([targets, z[inside.argmax(1)]])
    d2 = ((surface[:, None, :] - vertices[candidates][None]) ** 2).sum(-1)
    return candidates[d2.argmin(1)]


def landmark_vertices(mesh: HeadMesh) -> np.ndarray:
    """[68] int32 vertex index of each Multi-PIE landmark on the neutral ``mesh``."""
    v = mesh.vertices
    on_face = np.flatnonzero(~mesh.mouth & (v[:, 2] > 0.0))
    on_face = np.setdiff1d(on_face, mesh.lower_lip)
    outer = _front_most(v, on_face, _targets())
    inner_x = np.array([-0.4, 0.0, 0.4]) * MOUTH_HALF_WIDTH

    def nearest(row: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return row[np.abs(v[row, 0][None] - xs[:, None]).argmin(1)]

    inner = np.concatenate([[mesh.corners[0]], nearest(mesh.upper_lip, inner_x), [mesh.corners[1]],
                            nearest(mesh.lower_lip, inner_x[::-1])])
    return np.concatenate([outer, inner]).astype(np.int32)
