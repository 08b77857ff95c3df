"""Benchmark: a fit's peak memory does not grow with the take's length.

Usage:  python tools/bench_long_take.py [--frames 300 3000] [--cameras 2] [--size 160x120] [--out bench_long]

For each length it makes a take of the demo head (low resolution, stand-in landmarks: the true projections
plus 1 px noise): the shortest length is synthesised, longer ones loop it (frame files hard-linked under new
numbers, landmarks tiled), which costs the fit what fresh frames cost and spares the rendering. It then fits
each take in a fresh process with a light schedule, writes every output (animation.json/csv, livelink.csv,
meshes_head.npz, animation.glb, qa.mp4, report.json/html), and reads that process's peak resident memory.
It prints each length's peak RSS and the ratio of the longest to the shortest (the aim: within 1.2x), medians
of --repeats runs. One torch and BLAS thread, so runs compare.
"""

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import shutil

import numpy as np

from facecap.config import save_config
from facecap.demo import DemoConfig
from facecap.fit.config import LandmarkConfig, ScheduleConfig
from facecap.rig import build_demo_head, save_rig
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import Landmarks2D, load_landmarks, save_landmarks

LIGHT_SCHEDULE = ScheduleConfig(keyframes=4, keyframe_scales=[1.0], keyframe_iterations=[3], scales=[1.0],
                                iterations=[2], passes=1)


def make_take(root: Path, frames: int, cameras: int, size: tuple[int, int]) -> Path:
    """A synthesised take of ``frames`` frames of the demo head with stand-in landmarks (kept for later runs)."""
    take = root / f"take_{frames}"
    if (take / "landmarks.json").is_file():
        return take
    shutil.rmtree(take, ignore_errors=True)
    rig = build_demo_head()
    synth = SynthConfig()
    synth = dataclasses.replace(synth, supersample=1, image_format="jpg",
                                ring=dataclasses.replace(synth.ring, num_cameras=cameras, width=size[0],
                                                         height=size[1]),
                                motion=dataclasses.replace(synth.motion, num_frames=frames))
    calibration, truth = default_scene(rig, synth)
    synthesize_take(rig, calibration, truth, take, synth)
    save_landmarks(synthetic_landmarks(rig, calibration, truth, 1.0, np.random.default_rng(0)), take / "landmarks.json")
    return take


def loop_take(base: Path, frames: int) -> Path:
    """A take of ``frames`` frames that plays ``base`` over and over (kept for later runs): its frame files
    hard-linked under the new numbers, its landmarks tiled, its calibration and take.json copied (the frame range
    made ``frames`` long)."""
    take = base.parent / f"{base.name}_looped_{frames}"
    if (take / "landmarks.json").is_file():
        return take
    shutil.rmtree(take, ignore_errors=True)
    take.mkdir()
    shutil.copy(base / "calibration.json", take / "calibration.json")
    info = json.loads((base / "take.json").read_text())
    (take / "take.json").write_text(json.dumps(dict(info, frame_range=[0, frames]), indent=1))
    for camera in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(camera.iterdir())
        (take / camera.name).mkdir()
        for i in range(frames):
            source = files[i % len(files)]
            os.link(source, take / camera.name / f"{i:06d}{source.suffix}")
    landmarks = load_landmarks(base / "landmarks.json")
    index = np.arange(frames) % len(landmarks.points)
    save_landmarks(Landmarks2D(landmarks.points[index], landmarks.confidence[index], landmarks.camera_names,
                               landmarks.scheme), take / "landmarks.json")
    return take


def fit_in_child(take: Path, out: Path) -> tuple[float, float]:
    """Fit ``take`` with every output in a fresh process: (peak RSS in MB, seconds)."""
    config = dataclasses.replace(DemoConfig().fit, device="cpu", schedule=LIGHT_SCHEDULE, checkpoint_seconds=600.0,
                                 landmarks=LandmarkConfig(landmarks_file=str(take / "landmarks.json")))
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "fit.yaml")
    save_rig(build_demo_head(), out / "rig.npz")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    code = ("import resource, sys; from facecap.cli import main; code = main(sys.argv[1:]); "
            "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code, "-q", "fit", str(take), "--rig", str(out / "rig.npz"),
                          "--config", str(out / "fit.yaml"), "--out", str(out / "fit")], env=env, check=True,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - started
    kb = next(int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("peak_rss_kb"))
    return kb / 1024, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 3000], help="take lengths to compare")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of the frames")
    parser.add_argument("--repeats", type=int, default=1, help="fits per length (the median is reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_long"))
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    results = {}
    base = make_take(args.out, min(args.frames), args.cameras, size)
    for frames in args.frames:
        started = time.perf_counter()
        take = base if frames == min(args.frames) else loop_take(base, frames)
        print(f"{frames} frames: take ready in {time.perf_counter() - started:.0f} s", flush=True)
        runs = [fit_in_child(take, args.out / f"fit_{frames}_{k}") for k in range(args.repeats)]
        rss, seconds = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        results[frames] = {"peak_rss_mb": rss, "seconds": seconds, "frames_per_second": frames / seconds}
        print(f"{frames} frames: peak RSS {rss:.0f} MB, {seconds:.0f} s ({frames / seconds:.1f} frames/s)",
              flush=True)
    shortest, longest = min(results), max(results)
    ratio = results[longest]["peak_rss_mb"] / results[shortest]["peak_rss_mb"]
    print(f"peak RSS, {longest} frames / {shortest} frames: {ratio:.2f}x (aim: within 1.2x)")
    (args.out / "bench_long_take.json").write_text(json.dumps({"runs": results, "ratio": ratio}, indent=1))
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
