"""The demo head's shape as a signed distance function (SDF) built from smooth primitives.

Head space as in the ICT rig: centimetres, y up, the face looking down +z, the performer's left on
+x. Bilateral features are placed with ``|x|`` so the head is exactly mirror-symmetric. The SDF is
only approximately a distance (the ellipsoid bound and the smooth min/max of Quilez,
https://iquilezles.org/articles/distfunctions and /smin), which is enough for ray casting and
for the "offset in cm" meaning of the feature sizes.
"""

import numpy as np

__all__ = ["head_sdf", "lid_curve", "lip_outline", "mouth_line_y", "mouth_polar_angle", "polar_angle", "HEAD_CENTRE",
           "MOUTH_Y", "MOUTH_Z", "MOUTH_HALF_WIDTH", "EYE_CENTRE", "EYE_HALF_WIDTH", "EYE_UPPER_LID", "EYE_LOWER_LID",
           "NOSE_TIP"]

HEAD_CENTRE = np.array([0.0, 0.8, 0.6])  # cm; origin of the casting rays, inside the skull behind the nose
MOUTH_Y, MOUTH_Z = -3.3, 11.55           # cm; mid-point of the mouth line (where the lips meet)
MOUTH_HALF_WIDTH = 2.45                  # cm; the mouth corners lie at x = +-2.45
EYE_CENTRE = np.array([3.15, 3.5, 9.35])  # cm; left eye (mirror x for the right one), on the eyeball front
EYE_HALF_WIDTH = 1.3                      # cm; corner to centre
EYE_UPPER_LID, EYE_LOWER_LID = 0.48, 0.36  # cm; lid heights above/below EYE_CENTRE at mid-eye
NOSE_TIP = np.array([0.0, 0.4, 12.95])    # cm

_UPPER_LIP_HEIGHT, _LOWER_LIP_HEIGHT = 0.75, 0.95  # cm; vermilion heights at mid-mouth
_LIP_RECESS = 1.7  # cm; how far the mouth corners sit behind the mid-lips
_MOUTH_GROOVE_DEPTH = 0.22  # cm; how far the lip crease sinks into the lips
_MOUTH_GROOVE_WIDTH = 0.012  # rad of polar angle; the crease's half-width seen from HEAD_CENTRE


def lid_curve(x: np.ndarray, upper: bool) -> np.ndarray:
    """Height (cm) of the left eye's upper or lower lid margin at x (mirror x for the right eye)."""
    shape = np.clip(1.0 - ((x - EYE_CENTRE[0]) / EYE_HALF_WIDTH) ** 2, 0.0, None)
    return EYE_CENTRE[1] + (EYE_UPPER_LID if upper else -EYE_LOWER_LID) * shape


def mouth_line_y(x: np.ndarray) -> np.ndarray:
    """Height (cm) of the mouth line (where the lips meet) at x.

    The line is the grid row at the mouth's polar angle, a cone about HEAD_CENTRE's vertical, so it
    rises towards the corners, where the lips sit further back (_LIP_RECESS at the corners).
    """
    z = MOUTH_Z - _LIP_RECESS * (np.asarray(x) / MOUTH_HALF_WIDTH) ** 2
    return HEAD_CENTRE[1] + np.hypot(x, z - HEAD_CENTRE[2]) / np.tan(mouth_polar_angle())


def lip_outline(x: np.ndarray, upper: bool) -> np.ndarray:
    """Height (cm) of the outer lip border (vermilion line) at x, upper or lower lip."""
    shape = np.clip(1.0 - (x / MOUTH_HALF_WIDTH) ** 2, 0.0, None)
    return mouth_line_y(x) + (_UPPER_LIP_HEIGHT * shape ** 0.6 if upper else -_LOWER_LIP_HEIGHT * shape ** 0.8)


def polar_angle(points: np.ndarray) -> np.ndarray:
    """[N] angle (rad) between +y and the ray from HEAD_CENTRE to each of ``points`` [N, 3]."""
    d = points - HEAD_CENTRE
    return np.arctan2(np.hypot(d[:, 0], d[:, 2]), d[:, 1])


def mouth_polar_angle() -> float:
    """The polar angle of the mouth line: the row of the surface grid that is cut open as the lips."""
    return float(polar_angle(np.array([[0.0, MOUTH_Y, MOUTH_Z]]))[0])


def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    qx, qy, qz = ((p[:, k] - centre[k]) / radii[k] for k in range(3))
    k0 = np.sqrt(qx * qx + qy * qy + qz * qz)
    k1 = np.sqrt((qx / radii[0]) ** 2 + (qy / radii[1]) ** 2 + (qz / radii[2]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _round_cone(p: np.ndarray, a, b, ra: float, rb: float) -> np.ndarray:
    """Capsule from a to b whose radius goes linearly from ra to rb (an approximate round cone)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    h = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - a - h[:, None] * ab, axis=1) - (ra + (rb - ra) * h)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union) with blend radius k (cm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    return -_smin(-a, -b, k)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Approximate signed distance (cm, negative inside) of points ``p`` [N, 3] (cm, head space)."""
    m = np.column_stack([np.abs(p[:, 0]), p[:, 1], p[:, 2]])  # mirrored: bilateral features use |x|
    d = _ellipsoid(p, (0.0, 4.3, -0.6), (7.4, 10.8, 10.0))                       # cranium
    d = _smin(d, _ellipsoid(p, (0.0, -1.2, 2.8), (6.1, 5.8, 7.3)), 2.0)          # mid and lower face
    d = _smin(d, _ellipsoid(p, (0.0, -2.6, 7.4), (3.3, 2.6, 3.6)), 1.5)          # muzzle (maxilla, teeth)
    d = _smin(d, _ellipsoid(p, (0.0, -6.5, 7.9), (2.4, 1.6, 2.2)), 1.5)          # chin
    d = _smin(d, _round_cone(m, (1.5, -6.5, 7.4), (4.7, -4.2, 1.8), 0.9, 1.0), 2.2)  # mandible body
    neck = np.hypot(p[:, 0] / 5.7, (p[:, 2] + 1.0) / 6.0) * 5.7 - 5.7
    d = _smin(d, np.maximum(neck, p[:, 1] + 2.0), 3.0)                           # neck, capped inside the head
    d = _smin(d, _round_cone(m, (0.5, 5.2, 9.0), (4.9, 5.5, 7.5), 0.6, 0.5), 1.2)  # brow ridge
    d = _smin(d, _ellipsoid(m, (4.4, 1.3, 6.8), (2.0, 1.3, 1.7)), 2.0)           # cheekbones
    d = _smax(d, -_ellipsoid(m, (3.15, 3.6, 10.0), (2.0, 1.3, 1.3)), 1.2)        # eye sockets
    d = _smin(d, _ellipsoid(m, (3.15, 3.5, 8.3), (1.1, 1.1, 1.1)), 0.9)          # eyeballs under the lids
    d = _smin(d, _round_cone(p, (0.0, 3.7, 9.1), (0.0, 0.8, 11.2), 0.5, 1.05), 1.0)  # nose body
    d = _smin(d, _ellipsoid(p, (0.0, 0.45, 11.95), (0.8, 0.75, 0.9)), 0.5)       # nose tip
    d = _smin(d, _ellipsoid(m, (1.0, -0.2, 10.7), (0.7, 0.6, 0.8)), 0.7)         # nose wings (alae)
    d = _smin(d, _ellipsoid(p, (0.0, MOUTH_Y + 0.4, MOUTH_Z - 0.9), (2.2, 0.55, 0.95)), 0.6)  # upper lip
    d = _smin(d, _ellipsoid(p, (0.0, MOUTH_Y - 0.5, MOUTH_Z - 1.0), (1.9, 0.6, 0.95)), 0.6)   # lower lip
    d = _smin(d, _ellipsoid(m, (6.9, 2.0, -0.6), (1.1, 2.9, 1.8)), 0.6)          # ears (simple lobes)
    lips = np.clip((MOUTH_HALF_WIDTH + 0.3 - np.abs(p[:, 0])) / 0.6, 0.0, 1.0) * (p[:, 2] > 8.0)
    crease = np.exp(-((polar_angle(p) - mouth_polar_angle()) / _MOUTH_GROOVE_WIDTH) ** 2)
    return d + _MOUTH_GROOVE_DEPTH * lips * crease
