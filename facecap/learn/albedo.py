"""Random per-vertex albedo for training renders: skin tones, hair, brows, lips, eyes and mouth, with blotches.

A rig rarely carries the performer's texture, and a network trained on one albedo learns that albedo.
Each training sample paints the rig's vertices afresh: a skin tone from pale to dark with low-frequency
blotches (random 3D sinusoids over the neutral) and fine mottling, brows along the brow landmarks, lips
inside the outer lip contour, a hair cap above a random hairline, irises and pupils on the eyeballs'
fronts, and the mouth's teeth and gums. The regions come from the rig's Multi-PIE 68 landmarks and its
material names (ICT-FaceKit's: sclera, iris, teeth, gums, lashes); a rig without them is all skin.
"""

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath

from facecap.rig.model import Rig
from facecap.units import unit_scale

__all__ = ["AlbedoRegions", "random_albedo"]

BROWS = (np.arange(17, 22), np.arange(22, 27))      # Multi-PIE 68: the brows' five points each
OUTER_LIPS = np.arange(48, 60)
EYE_CORNERS = (36, 39, 42, 45)
# Material classes by name fragment (lower case); anything else is skin.
MATERIAL_CLASSES = (("sclera", "eyeball"), ("iris", "eyeball"), ("teeth", "teeth"), ("gum", "mouth"),
                    ("tongue", "mouth"), ("mouth", "mouth"), ("lash", "hair"))
IRIS_HALF_ANGLE = np.radians(32.0)                   # an iris of ~12 mm on an eyeball of ~24 mm
PUPIL_HALF_ANGLE = np.radians(13.0)
LIPSTICK = np.array([0.62, 0.16, 0.16])
PALE_SKIN, DARK_SKIN = np.array([0.86, 0.66, 0.56]), np.array([0.30, 0.19, 0.14])


@dataclass(frozen=True)
class AlbedoRegions:
    """Per-vertex geometry the painter needs, computed once per rig (lengths in mm, head frame).

    Attributes:
        positions: [V, 3] neutral vertices, mm. kind: [V] str class (skin, eyeball, teeth, mouth, hair).
        brow_distance: [V] mm from the nearest brow polyline (inf without landmarks).
        in_lips: [V] bool, inside the outer lip contour seen from the front.
        eye_angle: [V] radians from the eyeball's forward axis (pi off the eyeballs).
        brow_height: y of the brows (mm); front: z of the face's front (mm); None without landmarks.
    """

    positions: np.ndarray
    kind: np.ndarray
    brow_distance: np.ndarray
    in_lips: np.ndarray
    eye_angle: np.ndarray
    brow_height: float | None
    front: float | None

    @classmethod
    def from_rig(cls, rig: Rig) -> "AlbedoRegions":
        p = rig.neutral * unit_scale(rig.units, "mm")
        V = len(p)
        kind = np.full(V, "skin", dtype=object)
        if rig.face_material is not None:
            for m, name in enumerate(rig.material_names):
                cls_name = next((c for fragment, c in MATERIAL_CLASSES if fragment in name.lower()), None)
                if cls_name is not None:
                    kind[np.unique(rig.faces[rig.face_material == m])] = cls_name
        eye_angle = np.full(V, np.pi)
        brow_distance, in_lips = np.full(V, np.inf), np.zeros(V, dtype=bool)
        brow_height = front = None
        if rig.landmark_scheme == "multipie68" and rig.landmark_vertices is not None:
            lm = p[rig.landmark_vertices]
            skin = kind == "skin"
            brow_distance = np.minimum(*(_polyline_distance(p, lm[b]) for b in BROWS))
            brow_distance[~skin] = np.inf
            lips = PolygonPath(lm[OUTER_LIPS, :2])
            in_lips = skin & lips.contains_points(p[:, :2]) & (p[:, 2] > lm[OUTER_LIPS, 2].min() - 10.0)
            brow_height, front = float(lm[np.concatenate(BROWS), 1].mean()), float(lm[:, 2].max())
            for side in (lm[list(EYE_CORNERS[:2])].mean(0), lm[list(EYE_CORNERS[2:])].mean(0)):
                eyeball = (kind == "eyeball") & (np.sign(p[:, 0]) == np.sign(side[0]))
                if eyeball.sum() < 4:
                    continue
                centre = p[eyeball].mean(0)
                offset = p[eyeball] - centre
                cos = offset[:, 2] / np.maximum(np.linalg.norm(offset, axis=1), 1e-9)
                eye_angle[eyeball] = np.arccos(np.clip(cos, -1.0, 1.0))
        return cls(p, kind, brow_distance, in_lips, eye_angle, brow_height, front)


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """[V] distance of each point [V, 3] to the polyline ``line`` [P, 3]."""
    a, b = line[:-1], line[1:]
    ab = b - a
    s = np.clip(np.einsum("vsd,sd->vs", points[:, None] - a[None], ab) / (ab * ab).sum(-1), 0.0, 1.0)
    nearest = a[None] + s[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(1)


def _soft(value: np.ndarray, edge: float) -> np.ndarray:
    """Coverage from a signed value (positive inside) with a soft edge of ``edge``."""
    return np.clip(0.5 + value / edge, 0.0, 1.0)


def _blotches(p: np.ndarray, rng: np.random.Generator, waves: int, wavelength: tuple[float, float]) -> np.ndarray:
    """[V] smooth noise in about [-1, 1]: a sum of ``waves`` random 3D sinusoids of the given wavelengths (mm)."""
    directions = rng.normal(size=(waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    k = directions * (2 * np.pi / rng.uniform(*wavelength, size=(waves, 1)))
    return np.sin(p @ k.T + rng.uniform(0, 2 * np.pi, size=waves)).sum(1) / np.sqrt(waves / 2)


def random_albedo(regions: AlbedoRegions, rng: np.random.Generator) -> np.ndarray:
    """[V, 3] float32 albedo in [0, 1] for one training sample."""
    p = regions.positions
    V = len(p)
    tone = rng.uniform() ** 1.5
    skin = (1 - tone) * PALE_SKIN + tone * DARK_SKIN
    skin = skin * rng.uniform(0.9, 1.1, size=3) * rng.uniform(0.85, 1.15)
    colour = np.tile(skin, (V, 1))
    colour *= 1 + rng.uniform(0.03, 0.12) * _blotches(p, rng, 12, (15.0, 60.0))[:, None]
    colour *= 1 + rng.uniform(0.0, 0.04) * rng.standard_normal((V, 1))
    hair = rng.uniform(0.03, 0.35) * np.array([1.0, rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.8)])
    if rng.uniform() < 0.1:                                         # fair hair
        hair = rng.uniform(0.45, 0.7) * np.array([1.0, 0.85, 0.6])
    if regions.brow_height is not None:
        brow = _soft(rng.uniform(2.0, 4.5) - regions.brow_distance, 2.0) * rng.uniform(0.4, 1.0)
        colour = colour * (1 - brow[:, None]) + hair * brow[:, None]
        redness = rng.uniform()                          # from the skin's own tone to a lipstick red
        lip_colour = (1 - redness) * skin * np.array([1.0, 0.7, 0.7]) + redness * LIPSTICK * rng.uniform(0.7, 1.2)
        lip = regions.in_lips * rng.uniform(0.3, 1.0)
        colour = colour * (1 - lip[:, None]) + lip_colour * lip[:, None]
        if rng.uniform() < 0.85:
            depth = np.clip((regions.front - p[:, 2]) / 150.0, 0.0, 1.0)    # 0 at the face, 1 at the back
            hairline = regions.brow_height + rng.uniform(20.0, 50.0) - depth * rng.uniform(60.0, 140.0)
            cap = _soft(p[:, 1] - hairline, 6.0) * (regions.kind == "skin")
            colour = colour * (1 - cap[:, None]) + hair * (1 + 0.2 * _blotches(p, rng, 6, (3.0, 8.0)))[:, None] \
                * cap[:, None]
    eye = regions.kind == "eyeball"
    iris = rng.uniform(0.05, 0.5) * np.array([1.0, rng.uniform(0.6, 1.0), rng.uniform(0.3, 1.2)])
    colour[eye] = rng.uniform(0.7, 0.95) * np.array([1.0, 0.97, 0.93])
    colour[eye & (regions.eye_angle < IRIS_HALF_ANGLE)] = iris
    colour[eye & (regions.eye_angle < PUPIL_HALF_ANGLE)] = 0.03
    colour[regions.kind == "teeth"] = rng.uniform(0.6, 0.9) * np.array([1.0, 0.95, 0.85])
    colour[regions.kind == "mouth"] = rng.uniform(0.25, 0.55) * np.array([1.0, 0.4, 0.4])
    lash = rng.uniform()
    colour[regions.kind == "hair"] = lash * hair + (1 - lash) * 0.6 * skin
    return np.clip(colour, 0.0, 1.0).astype(np.float32)
