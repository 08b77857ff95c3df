"""Synthetic takes with ground truth: render any rig's performance into calibrated cameras (docs/formats.md §2)."""

from facecap.synth.cameras import look_at, make_camera_ring
from facecap.synth.motion import MotionConfig, random_animation
from facecap.synth.scene import default_scene
from facecap.synth.take import LightingConfig, RingConfig, SynthConfig, random_lighting, synthesize_take

__all__ = ["synthesize_take", "SynthConfig", "RingConfig", "LightingConfig", "MotionConfig", "default_scene",
           "make_camera_ring", "look_at", "random_animation", "random_lighting"]
