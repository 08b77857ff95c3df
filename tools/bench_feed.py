"""Benchmark the fit's frame feed on a 9-view 1600x1200 take: can the host keep a GPU fit at 5 frames/s fed?

Usage:  python tools/bench_feed.py [--frames 16] [--views 9] [--size 1600x1200] [--gpu-fps 5] [--out bench_feed]

The take is built from dev_ict_4cam's frames (../shared, or $FACECAP_SHARED), upscaled and written as
JPEG, the views cycling over its four cameras. Each batch of 8 frames needs its frames decoded and the
head's outline found in every view (facecap.take.silhouette). Measured in the same run:
  - serial: each batch read in the caller's thread, then "fitted" (reading without the feed);
  - feed:   facecap.fit.feed.feed_batches with 1, 2, 4, ... threads up to one a view, reading
            the next batch while the caller fits the current one.
The fit itself is stood in for by a wait of batch / --gpu-fps seconds (a GPU fit waits on the device,
with the GIL released), so frames/s is what the whole fit would reach if the device ran at --gpu-fps.
Printed as frames/s and as ratios to the serial baseline; host milliseconds a frame for each part.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from shared_data import SHARED, TAKES

from facecap.fit.feed import feed_batches, frames_to_device, read_batch
from facecap.take import open_take
from facecap.take.silhouette import silhouette_distance
from facecap.take.sources import read_image, to_float

SOURCE = TAKES / "dev_ict_4cam"
BATCH = 8


def build_take(folder: Path, frames: int, views: int, size: tuple[int, int]) -> None:
    """``views`` folders of ``frames`` JPEGs at ``size``, upscaled from the source take's camera folders."""
    cams = sorted(p for p in SOURCE.iterdir() if p.is_dir())
    for v in range(views):
        out = folder / f"cam{v:02d}"
        out.mkdir(parents=True, exist_ok=True)
        files = sorted(cams[v % len(cams)].glob("*.jpg"))
        for i in range(frames):
            path = out / f"{i:06d}.jpg"
            if not path.exists():
                image = cv2.imread(str(files[i % len(files)]))
                cv2.imwrite(str(path), cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])


def per_image_ms(folder: Path, views: int, repeats: int = 5) -> dict[str, float]:
    """Single-thread milliseconds an image: decoding it, finding the outline in it, and its share of
    making a batch's floats on the device (here the CPU; a GPU does that part itself)."""
    path = next((folder / "cam00").glob("*.jpg"))
    stored = read_image(path)
    image = to_float(stored)
    batch = np.broadcast_to(stored, (BATCH, views, *stored.shape)).copy()
    silhouette_distance(image)
    timings = {}
    for name, work in (("decode", lambda: read_image(path)), ("silhouette", lambda: silhouette_distance(image)),
                       ("to device", lambda: frames_to_device(batch, torch.device("cpu")))):
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        timings[name] = 1000 * (time.perf_counter() - start) / repeats
    timings["to device"] /= BATCH * views
    return timings


def run(folder: Path, plan: list[np.ndarray], fit_seconds: float, threads: int | None) -> float:
    """Frames/s of reading ``plan`` and waiting ``fit_seconds`` a batch; threads None: serial."""
    device = torch.device("cpu")
    with open_take(folder, cache_frames=1) as take:
        start = time.perf_counter()
        batches = (read_batch(take, frames, device, True) for frames in plan) if threads is None else \
            feed_batches(take, plan, device, True, threads)
        for batch in batches:
            time.sleep(fit_seconds * len(batch.frames) / BATCH)
        return sum(len(f) for f in plan) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--views", type=int, default=9)
    parser.add_argument("--size", default="1600x1200", help="WxH of the views")
    parser.add_argument("--gpu-fps", type=float, default=5.0, help="the device's speed the wait stands for")
    parser.add_argument("--out", type=Path, default=Path("bench_feed"), help="where the take is built (kept)")
    args = parser.parse_args()
    if not SOURCE.is_dir():
        print(f"needs dev_ict_4cam under {SHARED} (set FACECAP_SHARED)", file=sys.stderr)
        return 2
    size = tuple(int(v) for v in args.size.lower().split("x"))
    folder = args.out / f"take_{args.views}x{size[0]}x{size[1]}"
    build_take(folder, args.frames, args.views, size)
    plan = [np.arange(a, min(a + BATCH, args.frames)) for a in range(0, args.frames, BATCH)]
    fit_seconds = BATCH / args.gpu_fps
    parts = per_image_ms(folder, args.views)
    host_ms = args.views * (parts["decode"] + parts["silhouette"])
    print(f"{args.views} views at {size[0]}x{size[1]}, {os.cpu_count()} CPU cores: decode {parts['decode']:.1f} ms, "
          f"outline {parts['silhouette']:.1f} ms, floats on the CPU {parts['to device']:.1f} ms an image; "
          f"{host_ms:.0f} ms of decoding and outlines a frame on one core (a {args.gpu_fps:g} frames/s fit has "
          f"{1000 / args.gpu_fps:.0f})")
    rows = {"serial": run(folder, plan, fit_seconds, None)}
    threads = 1
    while True:
        rows[f"feed, {threads} threads"] = run(folder, plan, fit_seconds, threads)
        if threads >= min(args.views, os.cpu_count() or 1):
            break
        threads = min(2 * threads, args.views, os.cpu_count() or 1)
    print(f"\n{'reader':20s} {'frames/s':>9s} {'vs serial':>10s}   (device standing in at {args.gpu_fps:g} frames/s)")
    for name, fps in rows.items():
        print(f"{name:20s} {fps:9.2f} {fps / rows['serial']:9.2f}x")
    (args.out / "bench_feed.json").write_text(json.dumps({"per_image_ms": parts, "frames_per_second": rows,
                                                          "views": args.views, "size": size,
                                                          "gpu_fps": args.gpu_fps}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
