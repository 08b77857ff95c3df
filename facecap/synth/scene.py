"""The generated parts of a synthetic take: cameras around the head and a random performance."""

import numpy as np

from facecap.animation import Animation
from facecap.camera.model import Calibration
from facecap.rig import Rig
from facecap.synth.cameras import make_camera_ring
from facecap.synth.motion import random_animation
from facecap.synth.take import SynthConfig

__all__ = ["default_scene", "GENERATED_UNITS"]

GENERATED_UNITS = "mm"  # world units of generated cameras and performances
# Seed offsets so that cameras, performance and rendering draw independent random streams from one seed.
_MOTION_STREAM = 1


def default_scene(rig: Rig, config: SynthConfig, calibration: Calibration | None = None,
                  animation: Animation | None = None) -> tuple[Calibration, Animation]:
    """Fill in what the user did not give: a ring of ``config.ring`` cameras around the head's
    neutral centre (head at the world origin, y up, face along +z) and a ``config.motion`` performance
    seeded from ``config.seed``. Given parts are returned unchanged."""
    if calibration is None:
        ring = config.ring
        centre = rig.in_units(GENERATED_UNITS).neutral.mean(0)
        calibration = make_camera_ring(ring.num_cameras, (ring.width, ring.height), ring.distance, target=centre,
                                       arc_deg=ring.arc_deg, elevation_deg=ring.elevation_deg,
                                       dist=(ring.k1, 0.0, 0.0, 0.0, 0.0), units=GENERATED_UNITS,
                                       fov_deg=ring.fov_deg)
    if animation is None:
        rng = np.random.default_rng([config.seed, _MOTION_STREAM])
        animation = random_animation(rig.shape_names, config.motion, rng, units=calibration.units)
    return calibration, animation
