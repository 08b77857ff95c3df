"""A built-in demo head made by code, with no data file: the default rig of the demo and the tests.

The head is a signed distance function of smooth primitives (cranium, jaw, nose, lips, eye sockets,
ears) sampled by rays from a point inside the skull on a (polar angle, azimuth) grid, with the
mouth row split into two lips and closed by a mouth pouch. Blendshapes (ARKit names), correctives
and identity modes are analytic offsets of the neutral; the albedo is painted procedurally in UV
space; 68 Multi-PIE landmarks are embedded. Units are cm, y up, the face looks down +z and ``_L``
shapes move the performer's left (+x), like the ICT rig in ../shared/data/rigs.

Example:
    >>> from facecap.rig.demo_head import build_demo_head
    >>> rig = build_demo_head()
    >>> rig.units, 5000 <= rig.num_vertices <= 20000
    ('cm', True)
"""

import logging
from dataclasses import dataclass

import numpy as np

from facecap.config import field
from facecap.errors import ConfigError
from facecap.rig.demo.landmarks import landmark_vertices
from facecap.rig.demo.shapes import build_offsets
from facecap.rig.demo.surface import build_head_mesh
from facecap.rig.demo.texture import paint_texture
from facecap.rig.model import Rig

__all__ = ["DemoHeadConfig", "build_demo_head"]

log = logging.getLogger(__name__)

_BASE_ROWS, _BASE_HALF_COLUMNS = 96, 72  # grid at resolution 1: about 14k vertices
_RESOLUTION_RANGE = (0.25, 2.0)
_TEXTURE_RANGE = (16, 4096)
MATERIAL_NAMES = ("skin", "mouth_interior")


@dataclass
class DemoHeadConfig:
    resolution: float = field(1.0, "vertex density: grid rows and columns scale with it (1.0: about 14k vertices, "
                                   "0.5: about 3.5k), in [0.25, 2]")
    texture_size: int = field(512, "albedo texture width and height in texels, in [16, 4096]")
    seed: int = field(0, "seed of the texture's skin and hair noise (the geometry has no randomness)")


def _check(config: DemoHeadConfig) -> None:
    lo, hi = _RESOLUTION_RANGE
    if not lo <= config.resolution <= hi:
        raise ConfigError(f"config key 'resolution': expected a value in [{lo}, {hi}], got {config.resolution}")
    lo, hi = _TEXTURE_RANGE
    if not lo <= config.texture_size <= hi:
        raise ConfigError(f"config key 'texture_size': expected a value in [{lo}, {hi}], got {config.texture_size}")


def build_demo_head(config: DemoHeadConfig | None = None) -> Rig:
    """Build the demo head rig (deterministic for a given config).

    Returns:
        A :class:`Rig` in cm with ARKit-named shapes (jawOpen, mouthSmile_L, eyeBlink_R, ...),
        five correctives, five identity modes (face width, nose length, jaw width, brow height,
        lip fullness; about one standard deviation each), UVs with a [1, S, S, 3] uint8 albedo,
        materials "skin" and "mouth_interior", and "multipie68" landmarks.
    """
    config = config or DemoHeadConfig()
    _check(config)
    rows = max(int(round(_BASE_ROWS * config.resolution)), 8)
    columns = 2 * max(int(round(_BASE_HALF_COLUMNS * config.resolution)), 8)
    mesh = build_head_mesh(rows, columns)
    offsets = build_offsets(mesh)
    rig = Rig(units="cm", neutral=mesh.vertices, faces=mesh.faces, shape_names=offsets.shape_names,
              shape_deltas=offsets.shape_deltas, corrective_keys=offsets.corrective_keys,
              corrective_deltas=offsets.corrective_deltas, identity_deltas=offsets.identity_deltas,
              uv=mesh.uv, uv_faces=mesh.uv_faces, face_material=mesh.face_material, material_names=MATERIAL_NAMES,
              material_opaque=np.ones(len(MATERIAL_NAMES), bool), landmark_scheme="multipie68",
              landmark_vertices=landmark_vertices(mesh), texture=paint_texture(mesh, config.texture_size, config.seed))
    log.info("built demo head: %d vertices, %d shapes", rig.num_vertices, rig.num_shapes)
    return rig
