"""Generated performances: smooth sparse random expressions and gentle head motion."""

import math
from dataclasses import dataclass

import numpy as np

from facecap.animation import Animation
from facecap.config import field
from facecap.errors import ConfigError
from facecap.geometry.rotations import matrix_from_euler_xyz

__all__ = ["MotionConfig", "random_animation"]


@dataclass
class MotionConfig:
    """How a generated performance moves."""

    num_frames: int = field(16, "frames to generate")
    fps: float = field(30.0, "frame rate of the take")
    key_spacing: int = field(6, "frames between expression keys; weights ease between keys (smoothstep)")
    active_shapes: int = field(3, "shapes switched on at each key (sparse expressions)")
    max_weight: float = field(0.9, "largest weight of an active shape at a key (weights stay in [0, max])")
    head_rotation_deg: float = field(6.0, "amplitude of the head's wobble about each axis, degrees")
    head_translation: float = field(8.0, "amplitude of the head's drift along each axis, in the take's units")
    head_period_s: float = field(2.0, "period of the slowest head wobble, seconds")

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.key_spacing < 1 or self.active_shapes < 0:
            raise ConfigError("num_frames and key_spacing must be >= 1 and active_shapes >= 0")
        if not 0.0 <= self.max_weight <= 1.0:
            raise ConfigError(f"max_weight must lie in [0, 1], got {self.max_weight}")
        if self.fps <= 0 or self.head_period_s <= 0:
            raise ConfigError("fps and head_period_s must be positive")


def _smooth_keys(keys: np.ndarray, spacing: int, T: int) -> np.ndarray:
    """[N, K] key values every ``spacing`` frames -> [T, K], smoothstep between keys (zero slope at keys)."""
    frames = np.arange(T)
    seg = np.minimum(frames // spacing, len(keys) - 2)
    s = (frames - seg * spacing) / spacing
    s = s * s * (3 - 2 * s)
    return keys[seg] * (1 - s)[:, None] + keys[seg + 1] * s[:, None]


def random_animation(shape_names: tuple[str, ...], config: MotionConfig, rng: np.random.Generator,
                     base_R: np.ndarray | None = None, base_t: np.ndarray | None = None,
                     units: str = "mm") -> Animation:
    """A seeded performance: the first key is neutral, then each key activates a few random shapes.

    Args:
        shape_names: the rig's K shape names. rng: numpy Generator (the only randomness).
        base_R, base_t: [3, 3], [3] head-to-world pose the wobble is applied around (identity, 0).
    Returns:
        Animation with weights [T, K] in [0, max_weight] and head poses ``R = base_R @ wobble``.
    """
    T, K = config.num_frames, len(shape_names)
    n_keys = T // config.key_spacing + 2
    keys = np.zeros((n_keys, K))
    active = min(config.active_shapes, K)
    for i in range(1, n_keys):
        chosen = rng.choice(K, size=active, replace=False)
        keys[i, chosen] = rng.uniform(0.3, 1.0, size=active) * config.max_weight
    weights = _smooth_keys(keys, config.key_spacing, T)
    times = np.arange(T) / config.fps
    # Two incommensurate sinusoids per axis with random phases: smooth, non-repeating, bounded.
    omega = 2 * math.pi / config.head_period_s * np.array([1.0, 1.618])
    phases = rng.uniform(0, 2 * math.pi, size=(6, 2))
    wobble = np.sin(times[:, None, None] * omega + phases).mean(-1)           # [T, 6] in [-1, 1]
    wobble -= np.sin(phases).mean(-1)                                            # start at the base pose
    angles = np.radians(config.head_rotation_deg) * wobble[:, :3]
    R0 = np.eye(3) if base_R is None else np.asarray(base_R, float)
    t0 = np.zeros(3) if base_t is None else np.asarray(base_t, float)
    R = R0 @ matrix_from_euler_xyz(angles)
    t = t0 + config.head_translation * wobble[:, 3:]
    return Animation(shape_names=tuple(shape_names), weights=weights, R=R, t=t, fps=config.fps, units=units)
