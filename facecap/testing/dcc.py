"""Delivery files opened in Blender, for the dcc tests and tools/blender_import_log.py.

:func:`demo_delivery` exports a take of the demo head (in an OpenCV camera's world, so that the
performer frame matters) as animation.csv, animation.glb and animation.fbx; :func:`blender_report` opens one in
Blender (:mod:`facecap.testing.blender_probe`); :func:`import_errors` compares what Blender sees
with what was exported: the shape keys' values with the morph weights, the head's world matrix with
the performer-frame pose (metres, Blender's z up), the mesh with the performer's neutral.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.export import ExportConfig, export_animation, in_performer_frame
from facecap.export.fbx import blender_command, blender_frame_rate
from facecap.export.morph import MorphMesh
from facecap.rig.demo_head import build_demo_head

__all__ = ["GLTF_TO_BLENDER", "demo_delivery", "blender_report", "import_errors"]

PROBE = Path(__file__).with_name("blender_probe.py")
# glTF's axes (y up) as Blender's (z up): Blender's (x, y, z) is glTF's (x, -z, y).
GLTF_TO_BLENDER = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def demo_delivery(out: Path, fps: float, blender: str | None, frames: int = 14,
                  seed: int = 7) -> tuple[Animation, MorphMesh, dict[str, Path]]:
    """A random take of the demo head facing an OpenCV camera, exported as csv, glb and fbx into ``out``.

    Returns the animation (world), the performer's mesh in metres, and the exported paths.
    """
    rng = np.random.default_rng(seed)
    rig = build_demo_head()
    facing = Rotation.from_euler("xyz", [180, 180, 0], degrees=True)
    R = (facing * Rotation.from_rotvec(rng.normal(scale=0.15, size=(frames, 3)))).as_matrix()
    t = np.array([5.0, -30.0, 650.0]) + rng.normal(scale=10, size=(frames, 3))
    anim = Animation(rig.shape_names, rng.uniform(size=(frames, rig.num_shapes)), R, t, fps=fps, units="mm",
                     start_timecode="01:00:00:00")
    identity = rng.normal(size=rig.num_identities)
    config = ExportConfig(formats=["csv", "glb", "fbx"], meshes="none", blender=blender)
    paths = export_animation(anim, out, rig=rig, config=config, identity=identity)
    return anim, MorphMesh.from_rig(rig.in_units("m"), identity), paths


def blender_report(blender: str | None, kind: str, path: Path, frames: list[int], fps: float) -> dict:
    """What Blender sees of ``path`` (kind "glb" or "fbx") at take ``frames``; a glb is opened at ``fps``."""
    out = Path(path).with_suffix(f".{kind}.json")
    rate, base = blender_frame_rate(fps)
    command = blender_command(blender, PROBE) + [kind, str(path), str(out), ",".join(map(str, frames)), str(rate),
                                                 repr(base)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"Blender failed on {path}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def import_errors(report: dict, anim: Animation, mesh: MorphMesh) -> dict[str, float]:
    """Largest differences between Blender's view and the export: shape-key values; the head's world matrix
    against the performer-frame pose (metres, Blender's z up); and the performer's neutral placed by the head
    (Blender's world matrix times its mesh) against that pose, which holds however an importer splits the
    transform between the mesh data and the object (Blender's FBX importer scales the object from cm)."""
    frames = [int(f) for f in report["frames"]]
    performer = in_performer_frame(anim)
    pose = np.tile(np.eye(4), (len(frames), 1, 1))
    pose[:, :3, :3] = performer.R[frames]
    pose[:, :3, 3] = performer.t[frames] / 1000
    expected = GLTF_TO_BLENDER @ pose                                   # head (glTF axes, m) to Blender's world
    seen = [report["frames"][str(f)] for f in frames]
    basis = np.reshape(report["basis"], (-1, 3))
    matrices = np.array([s["matrix_world"] for s in seen])
    placed = np.einsum("fij,vj->fvi", matrices[:, :3, :3], basis) + matrices[:, None, :3, 3]
    truth = np.einsum("fij,vj->fvi", expected[:, :3, :3], mesh.vertices) + expected[:, None, :3, 3]
    weights = mesh.target_weights(anim.weights)[frames]
    return {"shape_keys": float(np.abs(np.array([s["values"] for s in seen]) - weights).max()),
            "head_matrix": float(np.abs(matrices - expected @ GLTF_TO_BLENDER.T).max()),
            "posed_mesh_m": float(np.abs(placed - truth).max())}
