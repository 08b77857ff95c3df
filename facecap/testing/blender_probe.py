"""Blender script for the dcc tests and tools/blender_import_log.py: open a glb or fbx, report what Blender sees (JSON).

Run as ``python blender_probe.py KIND FILE OUT.json FRAMES FPS FPS_BASE`` with a Python that has bpy (or under
a Blender executable after ``--``). KIND is glb or fbx; FRAMES is a comma-separated list of take frames. For a
glb the scene runs at FPS / FPS_BASE (glTF keys are in seconds); an FBX brings its own frame rate. Blender's FBX
importer places a key at time t at frame ``t * fps`` (the integer rate, fps_base left out), so take frame f of
an FBX at fps / fps_base is read at Blender frame ``f * fps_base``.
"""

import json
import sys

import bpy


def probe(kind: str, path: str, out: str, frames: list[int], fps: int, fps_base: float) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    if kind == "glb":
        scene.render.fps, scene.render.fps_base = fps, fps_base
        bpy.ops.import_scene.gltf(filepath=path)
    else:
        bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)     # keys at the file's own frames
    head = bpy.data.objects["head"]
    keys = head.data.shape_keys.key_blocks
    basis = [0.0] * (3 * len(keys[0].data))
    keys[0].data.foreach_get("co", basis)
    report = {"blender": bpy.app.version_string, "objects": {o.name: o.type for o in bpy.data.objects},
              "parent": head.parent.name if head.parent else None,
              "fps": scene.render.fps, "fps_base": scene.render.fps_base,
              "unit_system": scene.unit_settings.system, "scale_length": scene.unit_settings.scale_length,
              "shape_keys": [k.name for k in keys[1:]], "basis": basis, "frames": {}}
    for frame in frames:
        at = frame * scene.render.fps_base if kind == "fbx" else frame
        scene.frame_set(int(at), subframe=at - int(at))
        report["frames"][str(frame)] = {"values": [k.value for k in keys[1:]],
                                        "matrix_world": [list(row) for row in head.matrix_world]}
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    kind, path, out, frames, fps, fps_base = argv
    probe(kind, path, out, [int(f) for f in frames.split(",")], int(fps), float(fps_base))
