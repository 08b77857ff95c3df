"""Open facecap's animation.glb and animation.fbx in Blender and log what it sees, against what was exported.

Usage: python tools/blender_import_log.py [--fps 25 29.97] [--blender /path/to/blender] [--out DIR]

Exports a take of the demo head (14 frames, in an OpenCV camera's world) at each frame rate, opens the
glb and the fbx in Blender, and prints per file: Blender's version, the objects, the frame rate and units
Blender takes from the file, the shape keys, and the largest differences from the export at every frame
(shape-key values against the morph weights; the performer's neutral placed by the head's world matrix
against the performer-frame pose, in metres). docs/delivery.md quotes its output. Needs Blender:
the bpy module in this Python, or --blender.
"""

import argparse
import tempfile
from pathlib import Path

from facecap.testing.dcc import blender_report, demo_delivery, import_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, nargs="+", default=[25.0, 30000 / 1001], help="take frame rates")
    parser.add_argument("--blender", help="a Blender executable or a Python with bpy (default: this Python)")
    parser.add_argument("--out", type=Path, help="keep the exported files here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for fps in args.fps:
            out = (args.out or Path(scratch)) / f"{fps:.3f}fps"
            anim, mesh, paths = demo_delivery(out, fps, args.blender)
            frames = list(range(anim.num_frames))
            for kind in ("glb", "fbx"):
                report = blender_report(args.blender, kind, paths[kind], frames, fps)
                errors = import_errors(report, anim, mesh)
                print(f"{paths[kind].name} ({fps:.3f} fps take, {anim.num_frames} frames) "
                      f"in Blender {report['blender']}:")
                print(f"  objects {report['objects']}, head's parent {report['parent']}")
                print(f"  scene {report['fps']} / {report['fps_base']:.6g} fps, units {report['unit_system']} "
                      f"x {report['scale_length']:g}")
                print(f"  {len(report['shape_keys'])} shape keys: {', '.join(report['shape_keys'][:3])}, ..., "
                      f"{report['shape_keys'][-1]}")
                print(f"  largest difference over every frame: shape keys {errors['shape_keys']:.2e}, "
                      f"posed mesh {errors['posed_mesh_m']:.2e} m")


if __name__ == "__main__":
    main()
