"""Benchmark `facecap fit` on a synthetic take of many large views: frames/s, and accuracy against its truth.

Usage:  python tools/bench_fit_views.py [--views 9] [--size 1600x1200] [--frames 16] [--device cuda]
                                        [--compare-cpu N] [--out bench_fit_views] [--set key=value ...]

The GPU target is 9 views at 1600x1200 at 5 frames/s or more with nvdiffrast, at full quality (the
default schedule). The take is rendered from the ICT rig (flat albedo: the rig has no texture) by
`facecap synth`'s renderer, as JPEG frames; its landmarks are the true projections plus 1 px of noise
(the demo's stand-in detector), so the benchmark needs no detector model, which a GPU machine may lack.
Frames/s is the whole fit's wall time (the frame feed included). With ``--compare-cpu N`` the take's
first N frames are fitted on the device and on the CPU, and the device's fit is scored against the CPU's
as against a truth (facecap.fit.accuracy): the CUDA path's agreement with the CPU's. Results go to
<out>/bench_fit_views.json.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from shared_data import ICT_FULL, SHARED

from facecap.animation import Animation
from facecap.config import load_config
from facecap.fit import FitConfig, FitResult, fit_take
from facecap.fit.accuracy import animation_accuracy
from facecap.rig import Rig, load_rig
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import save_landmarks

LANDMARK_NOISE_PX = 1.0


def make_take(views: int, size: tuple[int, int], frames: int, device: str,
              out_dir: Path) -> tuple[Rig, Path, Animation]:
    """A JPEG take of the ICT rig with its truth and stand-in landmarks: (rig, take folder, truth)."""
    rig = load_rig(ICT_FULL)
    synth = load_config(SynthConfig, None, [f"ring.num_cameras={views}", f"ring.width={size[0]}",
                                            f"ring.height={size[1]}", f"motion.num_frames={frames}",
                                            "supersample=1", "image_format=jpg", f"device={device}"])
    calibration, truth = default_scene(rig, synth)
    started = time.perf_counter()
    take = synthesize_take(rig, calibration, truth, out_dir / "take", synth)
    logging.info("rendered %d frames x %d views in %.1f s", frames, views, time.perf_counter() - started)
    landmarks = synthetic_landmarks(rig, calibration, truth, LANDMARK_NOISE_PX, np.random.default_rng(synth.seed))
    save_landmarks(landmarks, take / "landmarks.json")
    return rig, take, truth


def fit(rig: Rig, take: Path, device: str, overrides: list[str], out_dir: Path) -> tuple[FitResult, float]:
    """The fit of ``take`` on ``device``, and its frames/s."""
    extra = [f"landmarks.landmarks_file={take / 'landmarks.json'}", f"device={device}", "qa_video=false"]
    result = fit_take(take, take / "calibration.json", rig, load_config(FitConfig, None, extra + overrides), out_dir)
    fps = result.animation.num_frames / max(result.seconds["total"] - result.seconds["landmarks"], 1e-9)
    return result, fps


def first_frames(take: Path, frames: int, out_dir: Path) -> Path:
    """A take folder that shows ``take``'s first ``frames`` frames (take.json's frame_range; links to its files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in take.iterdir():
        if item.name != "take.json" and not (out_dir / item.name).exists():
            (out_dir / item.name).symlink_to(item.resolve())
    meta = json.loads((take / "take.json").read_text())
    (out_dir / "take.json").write_text(json.dumps({**meta, "frame_range": [0, frames]}))
    return out_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=9)
    parser.add_argument("--size", default="1600x1200", help="WIDTHxHEIGHT of every view")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compare-cpu", type=int, default=0, metavar="N",
                        help="fit the first N frames on the device and on the CPU, and compare (0: no comparison)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("bench_fit_views"))
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="fit config overrides key=value")
    args = parser.parse_args()
    if not ICT_FULL.is_file():
        print(f"needs the ICT rig under {SHARED} (set FACECAP_SHARED)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    rig, take, truth = make_take(args.views, (width, height), args.frames, args.device, args.out)
    result, fps = fit(rig, take, args.device, args.overrides, args.out / f"fit_{args.device}")
    row = {"views": args.views, "size": [width, height], "frames": args.frames, "device": args.device,
           "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
           "frames_per_second": fps, "seconds": result.seconds,
           **animation_accuracy(rig, result.animation, truth).as_dict()}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("_mm", "_deg", "mae_all")))
    print(f"fit on {row['device_name']}: {args.frames} frames x {args.views} views {width}x{height}: "
          f"{fps:.3f} frames/s; {scores}")
    if args.compare_cpu:
        short = first_frames(take, args.compare_cpu, args.out / "take_first_frames")
        on_device, _ = fit(rig, short, args.device, args.overrides, args.out / f"fit_first_{args.device}")
        on_cpu, _ = fit(rig, short, "cpu", args.overrides, args.out / "fit_first_cpu")
        row["cpu_agreement"] = animation_accuracy(rig, on_device.animation, on_cpu.animation).as_dict()
        print(f"the first {args.compare_cpu} frames on {args.device} against the CPU's fit:", ", ".join(
            f"{k} {v:.2e}" for k, v in row["cpu_agreement"].items() if k != "frames"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_fit_views.json").write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
