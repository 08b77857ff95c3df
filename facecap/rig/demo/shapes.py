"""The demo head's ARKit-named blendshapes, correctives and identity modes, as smooth analytic offsets.

Every offset is a function of the neutral vertex positions (cm, head space) and of the mouth labels
(:data:`HeadMesh.lip_side`), so the rig is exact in any resolution. Most shapes are a displacement
vector times a Gaussian bump in (x, y), faded out towards the back of the head. ``_L`` is the
performer's left, +x, as in the ICT rig (its browInnerUp_L moves +x vertices); every ``_R`` shape is
the mirror image of its ``_L`` shape, evaluated at mirrored points. The jaw rotates about an axis
through the temporo-mandibular joints, weighted by how far below the mouth line a vertex lies
(the split mouth row lets the lips part).
"""

from dataclasses import dataclass

import numpy as np

from facecap.rig.demo.sdf import (EYE_CENTRE, EYE_HALF_WIDTH, MOUTH_HALF_WIDTH, MOUTH_Y, lid_curve, mouth_line_y,
                                  mouth_polar_angle, polar_angle)
from facecap.rig.demo.surface import LOWER_LIP, MOUTH_CORNER, UPPER_LIP, HeadMesh

__all__ = ["RigOffsets", "build_offsets", "vertex_normals", "lowerness", "JAW_OPEN_DEGREES", "IDENTITY_NAMES"]

JAW_PIVOT = np.array([0.0, 1.0, -0.5])  # cm; a point on the jaw's hinge axis (parallel to x)
JAW_OPEN_DEGREES = 8.0                  # jawOpen's rotation: about 1.9 cm of chin travel
_JAW_SIDE_SHIFT = 0.36                  # cm; jawLeft's slide; with the swing the chin moves about 0.8 cm
_JAW_SWING_RADIANS = 0.04               # jawLeft's swing about the right condyle
_RIGHT_CONDYLE = np.array([-5.5, 1.0, -0.5])  # cm
_BLINK_REST = 0.12                      # share of the eye opening left above the lower lid when closed
_UPPER_LID_FOLLOW = 0.9                 # cm; how far above the lid the skin follows the blink
_CORNER_Y = float(mouth_line_y(MOUTH_HALF_WIDTH))  # cm; height of the mouth corners


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(p: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """[N] Gaussian in (x, y) around (cx, cy) on the face (faded to zero behind z = 5 cm)."""
    g = np.exp(-0.5 * (((p[:, 0] - cx) / sx) ** 2 + ((p[:, 1] - cy) / sy) ** 2))
    return g * _smoothstep(5.0, 8.0, p[:, 2])


def lowerness(p: np.ndarray, lip_side: np.ndarray) -> np.ndarray:
    """[N] 0 above the mouth line, 1 below, a blend over a band that widens beyond the corners."""
    width = 0.02 + 0.35 * _smoothstep(MOUTH_HALF_WIDTH - 0.3, MOUTH_HALF_WIDTH + 2.5, np.abs(p[:, 0]))
    t = _smoothstep(-width, width, polar_angle(p) - mouth_polar_angle())
    t = np.where(lip_side == UPPER_LIP, 0.0, t)
    t = np.where(lip_side == LOWER_LIP, 1.0, t)
    return np.where(lip_side == MOUTH_CORNER, 0.5, t)


def _jaw_weight(p: np.ndarray, lip_side: np.ndarray) -> np.ndarray:
    """[N] how much a vertex follows the mandible: below the mouth, in front, above the neck."""
    return lowerness(p, lip_side) * _smoothstep(0.5, 4.0, p[:, 2]) * _smoothstep(-10.5, -7.5, p[:, 1])


def _jaw_open(p: np.ndarray, lip_side: np.ndarray) -> np.ndarray:
    a = np.radians(JAW_OPEN_DEGREES)
    r = p - JAW_PIVOT
    rotated = np.column_stack([r[:, 0], r[:, 1] * np.cos(a) - r[:, 2] * np.sin(a),
                               r[:, 1] * np.sin(a) + r[:, 2] * np.cos(a)])
    return (rotated - r) * _jaw_weight(p, lip_side)[:, None]


def _jaw_swing(p: np.ndarray) -> np.ndarray:
    """[N, 3] jaw moved to the left: half a slide, half a swing about the right condyle's vertical axis."""
    r = p - _RIGHT_CONDYLE
    b = _JAW_SWING_RADIANS
    swing = np.column_stack([r[:, 0] * np.cos(b) + r[:, 2] * np.sin(b) - r[:, 0], np.zeros(len(p)),
                             -r[:, 0] * np.sin(b) + r[:, 2] * np.cos(b) - r[:, 2]])
    return swing + np.array([_JAW_SIDE_SHIFT, 0.0, 0.0])


def _lip_region(p: np.ndarray) -> np.ndarray:
    return _bump(p, 0.0, MOUTH_Y, 1.15 * MOUTH_HALF_WIDTH / 1.6, 0.9)


def _blink(p: np.ndarray) -> np.ndarray:
    """Upper lid down onto the lower lid: the eye opening collapses to a line, the lid skin follows."""
    y_low, y_up = lid_curve(p[:, 0], upper=False), lid_curve(p[:, 0], upper=True)
    y_closed = y_low + _BLINK_REST * (y_up - y_low)
    y = p[:, 1]
    inside = y_closed + _BLINK_REST * (y - y_low) - y
    above = (y_closed + _BLINK_REST * (y_up - y_low) - y_up) * np.exp(-(((y - y_up) / _UPPER_LID_FOLLOW) ** 2))
    dy = np.where(y < y_low, 0.0, np.where(y > y_up, above, inside)) * _smoothstep(7.5, 8.5, p[:, 2])
    return np.column_stack([np.zeros_like(dy), dy, -0.15 * dy])


def _lid_band(p: np.ndarray, above: bool) -> np.ndarray:
    """[N] a soft band just above the upper lid (above=True) or below the lower lid, over the eye's width."""
    shape = np.clip(1.0 - ((p[:, 0] - EYE_CENTRE[0]) / EYE_HALF_WIDTH) ** 2, 0.0, None)
    return shape * np.exp(-(((p[:, 1] - lid_curve(p[:, 0], above)) / 0.45) ** 2)) * _smoothstep(7.5, 8.5, p[:, 2])


def _left_side(p: np.ndarray) -> np.ndarray:
    return _smoothstep(-0.4, 0.6, p[:, 0])


# name: (centre x, centre y, sigma x, sigma y, displacement (cm) at the centre, lip part or None)
_BUMP_SHAPES = {
    "browInnerUp_L": (1.4, 5.6, 0.9, 1.1, (0.02, 0.55, 0.05), None),
    "browOuterUp_L": (4.3, 5.4, 1.2, 1.0, (0.05, 0.55, -0.1), None),
    "browDown_L": (2.6, 5.2, 1.6, 0.9, (-0.2, -0.4, 0.15), None),
    "mouthSmile_L": (MOUTH_HALF_WIDTH, _CORNER_Y, 1.2, 1.0, (0.25, 0.45, -0.3), None),
    "mouthFrown_L": (MOUTH_HALF_WIDTH, _CORNER_Y - 0.2, 1.2, 1.0, (0.05, -0.42, -0.1), None),
    "mouthStretch_L": (MOUTH_HALF_WIDTH, _CORNER_Y - 0.3, 1.3, 1.2, (0.45, -0.2, -0.15), None),
    "mouthUpperUp_L": (1.1, MOUTH_Y + 0.5, 0.9, 0.7, (0.0, 0.35, 0.05), "upper"),
    "mouthLowerDown_L": (1.1, MOUTH_Y - 0.6, 0.9, 0.7, (0.0, -0.35, 0.05), "lower"),
    "noseSneer_L": (1.2, 0.0, 0.7, 0.9, (0.0, 0.35, 0.05), None),
    "cheekSquint_L": (3.9, 1.8, 1.3, 0.9, (0.0, 0.3, 0.1), None),
}


def _bump_shape(p: np.ndarray, lip_side: np.ndarray, spec) -> np.ndarray:
    cx, cy, sx, sy, vector, lip = spec
    w = _bump(p, cx, cy, sx, sy)
    if cx - 2.0 * sx < 0.0:
        w = w * _left_side(p)
    if lip is not None:
        low = lowerness(p, lip_side)
        w = w * (low if lip == "lower" else 1.0 - low)
    return w[:, None] * np.asarray(vector)


def _left_shapes(p: np.ndarray, lip_side: np.ndarray, normals: np.ndarray) -> dict[str, np.ndarray]:
    """Offsets [N, 3] of the performer's-left shapes at points ``p`` (mirror them for _R)."""
    shapes = {name: _bump_shape(p, lip_side, spec) for name, spec in _BUMP_SHAPES.items()}
    shapes["mouthSmile_L"] += _bump(p, 3.2, -1.0, 1.4, 1.2)[:, None] * np.array([0.05, 0.2, 0.15])  # cheek lift
    shapes["noseSneer_L"] += (_bump(p, 1.0, MOUTH_Y + 1.3, 0.8, 0.6) * (1.0 - lowerness(p, lip_side)))[:, None] \
        * np.array([0.0, 0.15, 0.0])
    shapes["eyeBlink_L"] = _blink(p)
    shapes["eyeWide_L"] = _lid_band(p, above=True)[:, None] * np.array([0.0, 0.22, 0.03])
    shapes["eyeSquint_L"] = _lid_band(p, above=False)[:, None] * np.array([0.0, 0.18, 0.04])
    shapes["cheekPuff_L"] = _bump(p, 3.8, -2.4, 1.5, 1.6)[:, None] * 0.8 * normals
    shapes["jawLeft"] = _jaw_weight(p, lip_side)[:, None] * _jaw_swing(p)
    lips = (_lip_region(p) * _smoothstep(-0.5, 0.5, p[:, 0]))[:, None]
    shapes["mouthLeft"] = lips * np.array([0.6, 0.0, 0.05])
    return shapes


def _mirror(vectors: np.ndarray) -> np.ndarray:
    return vectors * np.array([-1.0, 1.0, 1.0])


_MIRROR_NAMES = {"jawLeft": "jawRight", "mouthLeft": "mouthRight"}


def _right_name(name: str) -> str:
    return _MIRROR_NAMES.get(name, name[:-2] + "_R")


def _central_shapes(p: np.ndarray, lip_side: np.ndarray) -> dict[str, np.ndarray]:
    """Offsets of the unpaired shapes."""
    jaw = _jaw_open(p, lip_side)
    lips = _lip_region(p)
    across = np.clip(p[:, 0] / MOUTH_HALF_WIDTH, -1.3, 1.3)
    apart = 1.0 - 2.0 * lowerness(p, lip_side)  # +1 upper lip, -1 lower lip
    near_lips = _bump(p, 0.0, MOUTH_Y - 0.4, 2.6, 1.0)
    return {
        "jawOpen": jaw,
        "jawForward": _jaw_weight(p, lip_side)[:, None] * np.array([0.0, -0.1, 0.45])
        + (lips * lowerness(p, lip_side))[:, None] * np.array([0.0, 0.0, 0.15]),  # lower lip pushed out
        "mouthClose": -jaw * (near_lips * lowerness(p, lip_side))[:, None],
        "mouthPucker": lips[:, None] * np.column_stack([-0.35 * across, np.zeros_like(across),
                                                        np.full_like(across, 0.45)]),
        "mouthFunnel": lips[:, None] * np.column_stack([-0.15 * across, 0.3 * apart, np.full_like(across, 0.3)]),
        "mouthRollLower": (lips * lowerness(p, lip_side))[:, None] * np.array([0.0, 0.15, -0.3]),
    }


@dataclass(frozen=True)
class RigOffsets:
    shape_names: tuple[str, ...]
    shape_deltas: np.ndarray       # [K, V, 3] cm
    corrective_keys: np.ndarray    # [C, 4] int32, -1 padded
    corrective_deltas: np.ndarray  # [C, V, 3] cm
    identity_deltas: np.ndarray    # [I, V, 3] cm, one standard deviation each


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] unit area-weighted vertex normals of a CCW mesh."""
    n = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    acc = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(acc, faces[:, k], n)
    return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-12)


IDENTITY_NAMES = ("face_width", "nose_length", "jaw_width", "brow_height", "lip_fullness")


def _identity(p: np.ndarray, lip_side: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """[5, V, 3] identity modes, each about one standard deviation of adult variation."""
    zero = np.zeros(len(p))
    face_width = np.column_stack([0.06 * p[:, 0], zero, zero])
    nose = _bump(p, 0.0, 1.0, 1.3, 1.8) * _smoothstep(9.5, 12.5, p[:, 2])
    lower = _smoothstep(0.0, -5.0, p[:, 1]) * _smoothstep(0.0, 3.0, p[:, 2]) * _smoothstep(-11.0, -8.0, p[:, 1])
    brow = _bump(p, 0.0, 5.8, 4.0, 1.6)
    lips = _bump(p, 0.0, MOUTH_Y, 1.8, 0.8)
    return np.stack([
        face_width,
        nose[:, None] * np.array([0.0, -0.2, 0.35]),
        np.column_stack([0.08 * p[:, 0] * lower, zero, zero]),
        brow[:, None] * np.array([0.0, 0.35, 0.05]),
        0.2 * lips[:, None] * normals,
    ])


def build_offsets(mesh: HeadMesh) -> RigOffsets:
    """Blendshapes, correctives and identity modes of ``mesh`` (its neutral vertices)."""
    p, side = mesh.vertices, mesh.lip_side
    normals = vertex_normals(p, mesh.faces)
    left = _left_shapes(p, side, normals)
    mirrored = _left_shapes(_mirror(p), side, _mirror(normals))
    shapes = dict(_central_shapes(p, side))
    for name, delta in left.items():
        shapes[name] = delta
        shapes[_right_name(name)] = _mirror(mirrored[name])
    names = tuple(sorted(shapes))
    deltas = np.stack([shapes[n] for n in names])

    lips = _lip_region(p)
    apart = 1.0 - 2.0 * lowerness(p, side)
    under_eye = _bump(p, EYE_CENTRE[0], EYE_CENTRE[1] - 0.8, 1.0, 0.5)
    under_eye_r = _bump(_mirror(p), EYE_CENTRE[0], EYE_CENTRE[1] - 0.8, 1.0, 0.5)
    corners = _bump(np.column_stack([np.abs(p[:, 0]), p[:, 1:]]), MOUTH_HALF_WIDTH, _CORNER_Y, 1.0, 0.9)
    correctives = {
        ("jawOpen", "mouthFunnel"): lips[:, None] * np.column_stack([np.zeros_like(lips), 0.1 * apart,
                                                                      np.full_like(lips, 0.2)]),
        ("eyeBlink_L", "mouthSmile_L"): under_eye[:, None] * np.array([0.0, 0.12, 0.08]),
        ("eyeBlink_R", "mouthSmile_R"): under_eye_r[:, None] * np.array([0.0, 0.12, 0.08]),
        ("jawOpen", "mouthSmile_L", "mouthSmile_R"): corners[:, None] * np.column_stack(
            [0.1 * np.sign(p[:, 0]), np.full_like(lips, -0.1), np.full_like(lips, -0.15)]),
        ("jawOpen", "mouthClose"): (lips * (1.0 - lowerness(p, side)))[:, None] * np.array([0.0, -0.2, 0.05]),
    }
    keys = np.full((len(correctives), 4), -1, np.int32)
    for c, drivers in enumerate(correctives):
        keys[c, : len(drivers)] = [names.index(d) for d in drivers]
    return RigOffsets(shape_names=names, shape_deltas=deltas, corrective_keys=keys,
                      corrective_deltas=np.stack(list(correctives.values())),
                      identity_deltas=_identity(p, side, normals))
