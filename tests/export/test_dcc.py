"""animation.glb and animation.fbx opened in Blender: shape keys, head motion, units and frame rate (pytest -m dcc).

Needs Blender: the bpy module in this Python (pip install 'facecap[fbx]') or FACECAP_BLENDER naming a Blender
executable or a Python with bpy.
"""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.export import ExportConfig, export_animation, in_performer_frame
from facecap.export.fbx import blender_command
from facecap.export.morph import MorphMesh
from facecap.rig import build_demo_head

pytestmark = pytest.mark.dcc

PROBE = Path(__file__).with_name("blender_probe.py")
FRAMES = [0, 6, 13]
# glTF's axes (y up) as Blender's (z up): Blender's (x, y, z) is glTF's (x, -z, y).
GLTF_TO_BLENDER = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def _blender() -> str | None:
    blender = os.environ.get("FACECAP_BLENDER")
    if blender is None and importlib.util.find_spec("bpy") is None:
        pytest.skip("needs Blender: pip install 'facecap[fbx]' (bpy), or FACECAP_BLENDER=/path/to/blender")
    return blender


def _probe(blender, kind, path, fps=30, fps_base=1.0):
    out = Path(path).with_suffix(f".{kind}.json")
    command = blender_command(blender, PROBE) + [kind, str(path), str(out), ",".join(map(str, FRAMES)), str(fps),
                                                 repr(fps_base)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module", params=[25.0, 30000 / 1001], ids=["25fps", "29.97fps"])
def delivered(request, tmp_path_factory):
    """The demo head's take in an OpenCV camera's world, exported as glb and fbx."""
    blender = _blender()
    rng = np.random.default_rng(7)
    rig = build_demo_head()
    T = 14
    facing = Rotation.from_euler("xyz", [180, 180, 0], degrees=True)
    R = (facing * Rotation.from_rotvec(rng.normal(scale=0.15, size=(T, 3)))).as_matrix()
    t = np.array([5.0, -30.0, 650.0]) + rng.normal(scale=10, size=(T, 3))
    anim = Animation(rig.shape_names, rng.uniform(size=(T, rig.num_shapes)), R, t, fps=request.param, units="mm",
                     start_timecode="01:00:00:00")
    identity = rng.normal(size=rig.num_identities)
    out = tmp_path_factory.mktemp("dcc")
    config = ExportConfig(formats=["glb", "fbx"], meshes="none", blender=blender)
    paths = export_animation(anim, out, rig=rig, config=config, identity=identity)
    mesh = MorphMesh.from_rig(rig.in_units("m"), identity)
    return blender, anim, mesh, paths


def _expected_matrices(anim):
    """Blender's world matrix of the head at FRAMES: the performer-frame pose in metres, z up."""
    performer = in_performer_frame(anim)
    pose = np.tile(np.eye(4), (len(FRAMES), 1, 1))
    pose[:, :3, :3] = performer.R[FRAMES]
    pose[:, :3, 3] = performer.t[FRAMES] / 1000
    return GLTF_TO_BLENDER @ pose @ GLTF_TO_BLENDER.T


def _check(report, anim, mesh):
    assert report["parent"] == "performer" and report["shape_keys"] == list(mesh.target_names)
    weights = mesh.target_weights(anim.weights)
    matrices = _expected_matrices(anim)
    for i, frame in enumerate(FRAMES):
        seen = report["frames"][str(frame)]
        np.testing.assert_allclose(seen["values"], weights[frame], atol=1e-4)
        np.testing.assert_allclose(seen["matrix_world"], matrices[i], atol=1e-4)
    basis = np.reshape(report["basis"], (-1, 3))                       # Blender's z up, metres
    np.testing.assert_allclose(basis, mesh.vertices @ GLTF_TO_BLENDER[:3, :3].T, atol=1e-5)


def test_blender_reads_the_glb(delivered):
    blender, anim, mesh, paths = delivered
    if anim.fps != round(anim.fps):
        pytest.skip("Blender's glTF importer misplaces keys at fractional rates (docs/delivery.md)")
    _check(_probe(blender, "glb", paths["glb"], round(anim.fps), 1.0), anim, mesh)


def test_fbx_round_trips_through_blender(delivered):
    blender, anim, mesh, paths = delivered
    report = _probe(blender, "fbx", paths["fbx"])
    assert report["fps"] / report["fps_base"] == pytest.approx(anim.fps, rel=1e-6)      # the rate from the file
    _check(report, anim, mesh)
