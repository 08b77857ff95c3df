"""Blender script: convert facecap's animation.glb to animation.fbx (shape-key animation and the head's motion).

Runs inside Blender, as ``python blender_fbx.py GLB FBX --fps N --fps-base B`` with a Python that has
the ``bpy`` module, or ``blender --background --factory-startup --python blender_fbx.py -- GLB FBX ...``.
It imports nothing from facecap (Blender's Python may have none of facecap's packages); the caller,
:func:`facecap.export.fbx.write_fbx`, passes the frame rate as Blender spells it.

Blender's glTF importer turns the glb's morph targets into shape keys and its animation into keys;
they are put at Blender's frame f for take frame f (f / fps seconds). The FBX exporter writes them back
baked at every frame, unsimplified, at the scene's frame rate, with Blender's z-up metres converted into
the data itself ("apply transform"): y up, z forward, centimetres (UnitScaleFactor 1), and no extra
rotation or scale on the head. Its translation and Euler XYZ rotation curves are then the performer-frame
values of animation.csv.

At the NTSC rates (fps_base 1.001) Blender's glTF importer places keys at ``t * fps * fps_base`` rather
than ``t * fps / fps_base``; so the glb is imported at the nominal rate (fps_base 1, keys at ``t * fps``,
as either formula gives) and the keys are then moved to ``t * fps / fps_base``.
"""

import argparse
import json
import struct
import sys
from collections.abc import Iterator

import bpy

_GLB_HEADER, _CHUNK_HEADER = 12, 8


def _glb_extras(path: str) -> dict:
    """``asset.extras`` of a .glb file (its JSON chunk follows the 12-byte header and an 8-byte chunk header)."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack_from("<I", data, _GLB_HEADER)
    start = _GLB_HEADER + _CHUNK_HEADER
    return json.loads(data[start:start + length])["asset"].get("extras", {})


def _fcurves(action: "bpy.types.Action") -> Iterator["bpy.types.FCurve"]:
    """Every F-curve of an action: in all its slots (Blender 4.4 and later), or its plain list (before)."""
    layers = getattr(action, "layers", None)
    if layers:
        for layer in layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    yield from bag.fcurves
    else:
        yield from action.fcurves


def _scale_key_times(factor: float) -> None:
    """Multiply the frame of every key (and its handles) of every action by ``factor``."""
    for action in bpy.data.actions:
        for curve in _fcurves(action):
            for attribute in ("co", "handle_left", "handle_right"):
                values = [0.0] * (2 * len(curve.keyframe_points))
                curve.keyframe_points.foreach_get(attribute, values)
                values[0::2] = [x * factor for x in values[0::2]]
                curve.keyframe_points.foreach_set(attribute, values)
            curve.update()


def convert(glb: str, fbx: str, fps: int, fps_base: float) -> None:
    """Import ``glb`` into an empty scene at ``fps / fps_base`` frames a second and export ``fbx``."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    bpy.ops.import_scene.gltf(filepath=glb)
    if fps_base != 1.0:
        _scale_key_times(1.0 / fps_base)
        scene.render.fps_base = fps_base
    extras = _glb_extras(glb)
    scene.frame_start, scene.frame_end = int(extras["first_frame"]), int(extras["last_frame"])
    bpy.ops.export_scene.fbx(
        filepath=fbx, object_types={"MESH"}, axis_forward="-Z", axis_up="Y", bake_space_transform=True,
        global_scale=1.0, apply_unit_scale=True, apply_scale_options="FBX_SCALE_NONE", use_mesh_modifiers=False,
        mesh_smooth_type="OFF", add_leaf_bones=False, bake_anim=True, bake_anim_use_all_bones=False,
        bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True,
        bake_anim_step=1.0, bake_anim_simplify_factor=0.0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="facecap: animation.glb to animation.fbx through Blender")
    parser.add_argument("glb")
    parser.add_argument("fbx")
    parser.add_argument("--fps", type=int, required=True, help="Blender's scene fps (an integer)")
    parser.add_argument("--fps-base", type=float, default=1.0, help="frames a second are fps / fps_base")
    args = parser.parse_args(argv)
    convert(args.glb, args.fbx, args.fps, args.fps_base)
    return 0


if __name__ == "__main__":
    # Under a Blender executable, the script's own arguments follow "--".
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(argv))
