"""Benchmark the delivery files: how long each format adds to an export, and how large the files are.

Usage:  python tools/bench_export.py [--rig ict_full.npz] [--frames 1000] [--fps 29.97] [--repeats 3] [--fbx]

A random take of --frames frames (the rig's shapes, a head in an OpenCV camera's world) is exported with
formats json alone (the baseline), then json,csv,livelink, then json,csv,livelink,glb, and with --fbx also
json,csv,livelink,glb,fbx (Blender: the bpy module in this Python). Each is run --repeats times in this
process; printed are the median seconds, the ratio to the baseline, and each file's size. The rig
defaults to ../shared/data/rigs/ict_full.npz (or $FACECAP_SHARED), else the demo head. BLAS runs on one
thread: the export is I/O and Python bound.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from facecap.animation import Animation  # noqa: E402
from facecap.export import ExportConfig, export_animation  # noqa: E402
from facecap.rig import build_demo_head, load_rig  # noqa: E402

SHARED = Path(os.environ.get("FACECAP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rig", type=Path, default=SHARED / "data" / "rigs" / "ict_full.npz")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--fps", type=float, default=30000 / 1001)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fbx", action="store_true", help="also time the FBX conversion through Blender")
    args = parser.parse_args()
    rig = load_rig(args.rig) if args.rig.is_file() else build_demo_head()
    rng = np.random.default_rng(0)
    T = args.frames
    facing = Rotation.from_euler("xyz", [180, 180, 0], degrees=True)
    R = (facing * Rotation.from_rotvec(rng.normal(scale=0.1, size=(T, 3)))).as_matrix()
    anim = Animation(rig.shape_names, rng.uniform(size=(T, rig.num_shapes)), R,
                     np.array([0, 0, 700.0]) + rng.normal(scale=5, size=(T, 3)), fps=args.fps, units="mm")
    identity = rng.normal(size=rig.num_identities)
    runs = [["json"], ["json", "csv", "livelink"], ["json", "csv", "livelink", "glb"]]
    if args.fbx:
        runs.append(["json", "csv", "livelink", "glb", "fbx"])
    print(f"rig {args.rig.name if args.rig.is_file() else 'demo head'}: {rig.num_vertices} vertices, "
          f"{rig.num_shapes} shapes, {rig.num_correctives} correctives; {T} frames at {args.fps:g} fps")
    baseline = None
    for formats in runs:
        seconds = []
        with tempfile.TemporaryDirectory() as out:
            for _ in range(args.repeats):
                started = time.perf_counter()
                paths = export_animation(anim, out, rig=rig, config=ExportConfig(formats=formats, meshes="none"),
                                         identity=identity)
                seconds.append(time.perf_counter() - started)
            sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for k, p in paths.items() if k != "plot")
        median = statistics.median(seconds)
        baseline = baseline or median
        print(f"{','.join(formats):32s} {median:7.2f} s  ({median / baseline:5.1f}x json alone)  {sizes}")


if __name__ == "__main__":
    main()
