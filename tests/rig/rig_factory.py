"""Tiny synthetic rigs for the rig tests (imported by the test modules beside it)."""

import numpy as np

from facecap.rig import Rig


def tiny_rig(rng: np.random.Generator, correctives: bool = True, extras: bool = True, units: str = "cm") -> Rig:
    """A 6-vertex, 4-triangle rig with 3 shapes, 2 correctives (2- and 3-way), 2 identity modes,
    UVs, 2 materials, 3 landmarks and a 2-tile texture (``extras``)."""
    V, K = 6, 3
    neutral = rng.normal(size=(V, 3))
    faces = np.array([[0, 1, 2], [0, 2, 3], [3, 4, 5], [1, 4, 2]], dtype=np.int32)
    keys = np.array([[0, 1, -1, -1], [0, 1, 2, -1]], dtype=np.int32) if correctives else np.zeros((0, 4), np.int32)
    more = {}
    if extras:
        more = dict(uv=rng.uniform(size=(7, 2)), uv_faces=np.array([[0, 1, 2], [0, 2, 3], [3, 4, 5], [6, 4, 2]],
                                                                      dtype=np.int32),
                    face_material=np.array([0, 0, 1, 1], dtype=np.int16), material_names=("skin", "film"),
                    material_opaque=np.array([True, False]), landmark_scheme="test3",
                    landmark_vertices=np.array([0, 3, 5], dtype=np.int32),
                    texture=rng.integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8))
    return Rig(units=units, neutral=neutral, faces=faces, shape_names=("jawOpen", "mouthFunnel", "eyeBlink_L"),
               shape_deltas=rng.normal(size=(K, V, 3)), corrective_keys=keys,
               corrective_deltas=rng.normal(size=(len(keys), V, 3)),
               identity_deltas=rng.normal(size=(2 if extras else 0, V, 3)), **more)
