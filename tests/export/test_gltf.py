"""animation.glb: mesh, morph targets and animation decoded back equal the rig's; the Khronos validator passes it."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.export.gltf import head_quaternions, read_glb, write_glb
from facecap.export.morph import MorphMesh
from facecap.rig import build_demo_head, evaluate_rig

VALIDATOR = Path(__file__).resolve().parents[2] / "tools" / "gltf" / "validate.js"
_COMPONENTS = {5126: np.float32, 5125: np.uint32}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def _accessor(document, binary, index):
    """An accessor's data as [count, width], read by the glTF spec's rules (tightly packed views)."""
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    data = np.frombuffer(binary, dtype=_COMPONENTS[accessor["componentType"]],
                         count=accessor["count"] * _WIDTH[accessor["type"]], offset=view["byteOffset"])
    return data.reshape(accessor["count"], _WIDTH[accessor["type"]])


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """The demo head (5 identity modes, 5 correctives), 9 frames at 25 fps from frame 3: (rig, identity, anim, glb)."""
    rng = np.random.default_rng(3)
    rig = build_demo_head()
    T = 9
    R = Rotation.from_rotvec(rng.normal(scale=0.3, size=(T, 3))).as_matrix()
    anim = Animation(rig.shape_names, rng.uniform(size=(T, rig.num_shapes)), R, rng.normal(size=(T, 3)) * 20,
                     fps=25.0, units="mm", frames=np.arange(3, 3 + T), start_timecode="01:00:00:00")
    identity = rng.normal(size=rig.num_identities)
    path = write_glb(anim, MorphMesh.from_rig(rig.in_units("mm"), identity), tmp_path_factory.mktemp("glb") / "a.glb")
    return rig, identity, anim, path


def test_mesh_and_morph_targets_reproduce_the_rig(take):
    rig, identity, anim, path = take
    document, binary = read_glb(path)
    primitive = document["meshes"][0]["primitives"][0]
    base = _accessor(document, binary, primitive["attributes"]["POSITION"]).astype(np.float64)
    targets = np.stack([_accessor(document, binary, t["POSITION"]) for t in primitive["targets"]]).astype(np.float64)
    faces = _accessor(document, binary, primitive["indices"]).reshape(-1, 3)
    np.testing.assert_array_equal(faces, rig.faces)
    names = document["meshes"][0]["extras"]["targetNames"]
    assert names[:rig.num_shapes] == list(rig.shape_names) and len(names) == rig.num_shapes + rig.num_correctives
    assert names[rig.num_shapes] == "_x_".join(rig.shape_names[k] for k in rig.corrective_keys[0] if k >= 0)
    animation = document["animations"][0]
    paths = {c["target"]["path"]: animation["samplers"][c["sampler"]] for c in animation["channels"]}
    weights = _accessor(document, binary, paths["weights"]["output"]).reshape(anim.num_frames, -1)
    # Each frame's morphed mesh (metres) is the rig's mesh (mm) at that frame's weights, correctives included.
    morphed = base + np.einsum("tm,mvc->tvc", weights, targets)
    truth = evaluate_rig(rig.in_units("m"), anim.weights, identity)
    np.testing.assert_allclose(morphed, truth, atol=2e-6)                   # float32 metres: micrometres
    times = _accessor(document, binary, paths["rotation"]["input"])[:, 0]
    np.testing.assert_allclose(times, np.arange(3, 12) / 25.0, rtol=1e-6)
    quaternions = _accessor(document, binary, paths["rotation"]["output"])
    np.testing.assert_allclose(Rotation.from_quat(quaternions).as_matrix(), anim.R, atol=1e-6)
    translations = _accessor(document, binary, paths["translation"]["output"])
    np.testing.assert_allclose(translations, anim.t / 1000, atol=1e-7)
    extras = document["asset"]["extras"]
    assert (extras["fps"], extras["first_frame"], extras["last_frame"]) == (25.0, 3, 11)


def test_quaternion_signs_are_continuous(rng):
    R = Rotation.from_rotvec(np.outer(np.linspace(0, 1, 200), [0, 11.0, 0])).as_matrix()  # nearly two turns
    q = head_quaternions(R)
    assert np.all(np.einsum("ti,ti->t", q[1:], q[:-1]) > 0)
    np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), R, atol=1e-12)


def test_khronos_validator_finds_no_issue(take):
    """Install the validator with: npm install --prefix tools/gltf (tools/setup.sh does where npm exists)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js (node) for the Khronos glTF Validator")
    done = subprocess.run([node, str(VALIDATOR), str(take[3])], capture_output=True, text=True, timeout=300)
    if done.returncode == 3:
        pytest.skip("needs the npm package gltf-validator: npm install --prefix tools/gltf")
    report = json.loads(done.stdout)
    issues = report["issues"]
    assert (issues["numErrors"], issues["numWarnings"], issues["numInfos"]) == (0, 0, 0), issues["messages"]
    info = report["info"]
    assert info["animationCount"] == 1 and info["hasMorphTargets"] and info["totalVertexCount"] == 14189
