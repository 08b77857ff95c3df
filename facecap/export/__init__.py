"""Animation files for the next tool: JSON, FBX-ready CSV, Live Link Face CSV, meshes and plots."""

from facecap.export.animation import Animation, load_animation_json, save_animation_json

__all__ = ["Animation", "save_animation_json", "load_animation_json"]
