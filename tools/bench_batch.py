"""Benchmark `facecap batch` scaling: the same batch on a local Ray cluster of 1 and of N workers.

Usage:  python tools/bench_batch.py [--takes 4] [--frames 12] [--chunk 6:2] [--workers 1 2] [--repeat 2]
                                    [--out bench_batch]

Synthesises ``--takes`` takes of the demo head (``--frames`` frames, 3 cameras, landmarks files), builds one
actor profile from the first, and fits them all as one batch (chunks of N frames overlapping by O,
``--chunk N:O``) on a fresh local Ray cluster of each ``--workers`` count in turn, ``--repeat`` times
alternating; every run starts from an empty output folder. Prints the median wall time of each worker count
(Ray's start included), its frames/s, the speed-up over the first count and the machine's load average
before each run. Each task fits on one thread, so the ideal speed-up of N workers on N free cores is N.
"""

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from facecap.batch.manifest import load_manifest
from facecap.batch.runner import import_ray, run_batch
from facecap.fit.actor import ProfileTake, build_actor_profile, save_actor
from facecap.rig import build_demo_head, load_rig, save_rig
from facecap.testing.small_takes import short_fit_config, synthesize_small_take, write_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--takes", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--chunk", default="6:2", help="N:O chunks of N frames overlapping by O")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_batch"))
    args = parser.parse_args()
    ray = import_ray()
    chunk_frames, overlap = (int(x) for x in args.chunk.split(":"))
    work = args.out.resolve()
    takes_dir = work / "takes"
    if not (work / "rig.npz").is_file():
        rig = build_demo_head()
        save_rig(rig, work / "rig.npz")
        for k in range(args.takes):
            synthesize_small_take(rig, takes_dir / f"take{k:02d}", seed=10 + k, frames=args.frames)
    rig = load_rig(work / "rig.npz")
    config = short_fit_config()
    first = takes_dir / "take00"
    if not (work / "actor.npz").is_file():
        with_landmarks = dataclasses.replace(config, landmarks=dataclasses.replace(
            config.landmarks, landmarks_file=str(first / "landmarks.json")))
        save_actor(build_actor_profile([ProfileTake(first)], rig, with_landmarks, work / "build"), work / "actor.npz")
    runs: dict[int, list[dict]] = {n: [] for n in args.workers}
    for _ in range(args.repeat):
        for workers in args.workers:
            out = work / f"out{workers}"
            shutil.rmtree(out, ignore_errors=True)
            manifest = write_manifest(work / f"batch{workers}.yaml", work / "rig.npz", out, [str(takes_dir / "*")],
                                      config, actor=str(work / "actor.npz"), landmarks="{take}/landmarks.json",
                                      chunk_frames=chunk_frames, chunk_overlap=overlap)
            load = os.getloadavg()[0]
            start = time.perf_counter()
            summary = run_batch(load_manifest(manifest), workers=workers)
            seconds = time.perf_counter() - start
            assert ray.is_initialized() is False
            if any(t.status != "published" for t in summary.takes):
                print([t.error for t in summary.takes], file=sys.stderr)
                return 1
            frames = sum(t.frames for t in summary.takes)
            runs[workers].append({"seconds": seconds, "frames": frames, "load": load,
                                  "compute_seconds": sum(t.compute_seconds for t in summary.takes)})
            print(f"{workers} worker(s): {seconds:.1f} s, {frames / seconds:.3f} frames/s, load {load:.1f}",
                  flush=True)
    base = statistics.median(r["seconds"] for r in runs[args.workers[0]])
    print(f"\n{'workers':>7s} {'median s':>9s} {'frames/s':>9s} {'speed-up':>9s}  loads")
    for workers, rows in runs.items():
        median = statistics.median(r["seconds"] for r in rows)
        print(f"{workers:7d} {median:9.1f} {rows[0]['frames'] / median:9.3f} {base / median:9.2f}  "
              + ", ".join(f"{r['load']:.1f}" for r in rows))
    (work / "bench_batch.json").write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
