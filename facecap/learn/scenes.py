"""Random training scenes: a sparse, co-activated expression, an identity, a head pose and cameras around it.

Performances switch on a few shapes at a time, and mostly in company: a smile on both sides, both eyes
looking the same way. A scene draws a handful of *actions*, each one shape at a random strength, joined
most of the time by its mirror (``_L``/``_R``) or, for the eyes' gaze, by the shape that turns the other
eye the same way (``eyeLookIn_L`` with ``eyeLookOut_R``). Cameras stand on an arc around the face at
random yaw, pitch and distance, as a capture rig's do, and the head rolls a little in each.
"""

from dataclasses import dataclass

import numpy as np

from facecap.learn.config import DataConfig
from facecap.synth.cameras import look_at

__all__ = ["partner_shapes", "random_weights", "SceneGeometry", "random_scene_geometry"]

# Side suffixes only: ARKit's "Left"/"Right" endings also name directions (mouthLeft, jawLeft), never mirrors.
MIRROR_SUFFIXES = (("_L", "_R"), ("_l", "_r"))
GAZE_PARTNERS = (("LookIn", "LookOut"),)   # looking sideways turns one eye in and the other out
FULL_WEIGHT_CHANCE = 0.2                   # actions held at full strength (performances often are)
MIRROR_CHANCE = 0.75                       # actions joined by their mirror or gaze partner
MIRROR_BALANCE = (0.75, 1.0)               # the partner's strength relative to the action's


def _swap(name: str, a: str, b: str) -> str | None:
    if name.endswith(a):
        return name[: -len(a)] + b
    if name.endswith(b):
        return name[: -len(b)] + a
    return None


def partner_shapes(shape_names: tuple[str, ...]) -> np.ndarray:
    """[K] int: each shape's partner (its mirror, or the other eye's gaze shape), -1 where it has none."""
    index = {n: k for k, n in enumerate(shape_names)}
    partners = np.full(len(shape_names), -1)
    for k, name in enumerate(shape_names):
        for a, b in MIRROR_SUFFIXES:
            other = _swap(name, a, b)
            if other is None:
                continue
            for inward, outward in GAZE_PARTNERS:       # the gaze partner is the mirror of the opposite shape
                if inward in other:
                    other = other.replace(inward, outward)
                elif outward in other:
                    other = other.replace(outward, inward)
            if other in index:
                partners[k] = index[other]
                break
    return partners


def random_weights(partners: np.ndarray, config: DataConfig, rng: np.random.Generator) -> np.ndarray:
    """[K] weights in [0, 1]: ``Poisson(config.actions)`` actions (at least one), or neutral."""
    K = len(partners)
    weights = np.zeros(K)
    if rng.uniform() < config.neutral_fraction:
        return weights
    for _ in range(max(1, rng.poisson(config.actions))):
        k = rng.integers(K)
        value = 1.0 if rng.uniform() < FULL_WEIGHT_CHANCE else rng.uniform(0.1, 1.0)
        weights[k] = max(weights[k], value)
        if partners[k] >= 0 and rng.uniform() < MIRROR_CHANCE:
            weights[partners[k]] = max(weights[partners[k]], value * rng.uniform(*MIRROR_BALANCE))
    return weights


@dataclass(frozen=True)
class SceneGeometry:
    """A head pose and its cameras (world units mm).

    Attributes:
        R: [3, 3], t: [3] head-to-world pose. camera_R: [V, 3, 3] world-to-camera rotations (OpenCV axes);
        camera_centre: [V, 3] camera centres.
    """

    R: np.ndarray
    t: np.ndarray
    camera_R: np.ndarray
    camera_centre: np.ndarray


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def random_scene_geometry(reference: np.ndarray, config: DataConfig, rng: np.random.Generator) -> SceneGeometry:
    """Cameras on an arc in front of the face, which looks along +z of its head frame (y up).

    ``reference``: [3] head-frame point the cameras aim near (mm), e.g. the landmarks' centre. The whole
    scene is then moved by a random rigid motion, so that world and head frames differ.
    """
    V = config.views
    arc = np.radians(rng.uniform(*config.arc_deg))
    yaw_limit, pitch_limit = np.radians(config.yaw_deg), np.radians(config.pitch_deg)
    centre_yaw = rng.uniform(-1, 1) * max(yaw_limit - arc / 2, 0.0)
    yaws = centre_yaw + (np.linspace(-arc / 2, arc / 2, V) if V > 1 else np.zeros(1))
    yaws = np.clip(yaws + rng.normal(0, arc / (4 * V), size=V), -yaw_limit, yaw_limit)
    pitches = np.clip(rng.uniform(-0.6, 0.6) * pitch_limit + rng.normal(0, 0.2 * pitch_limit, size=V),
                      -pitch_limit, pitch_limit)
    distances = rng.uniform(*config.distance_mm, size=V)
    camera_R, centres = [], []
    for yaw, pitch, distance in zip(yaws, pitches, distances):
        direction = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        centre = reference + distance * direction
        roll = np.radians(rng.normal(0, config.roll_deg))
        up = np.array([np.sin(roll), np.cos(roll), 0.0])
        target = reference + rng.normal(0, 15.0, size=3)
        R, _ = look_at(centre, target, up)
        camera_R.append(R)
        centres.append(centre)
    world_R, world_t = _random_rotation(rng), rng.normal(0, 500.0, size=3)
    return SceneGeometry(R=world_R, t=world_t, camera_R=np.stack(camera_R) @ world_R.T,
                         camera_centre=np.stack(centres) @ world_R.T + world_t)
