"""Benchmark `facecap fit` on the ground-truth takes: accuracy against the project's targets, and frames/s.

Usage:  python tools/bench_fit.py [--takes dev_ict_4cam dev_ict_3cam_identity] [--landmarks mediapipe|truth]
                                  [--brightness 1.0] [--threads 2] [--out bench_fit] [--set key=value ...]

For each take of ../shared/data/takes (or $FACECAP_SHARED/data/takes) it fits the take with the
ICT rig and the default config (plus --set overrides), scores the result with
facecap.fit.accuracy against ground_truth.json (the true neutral posed by the fitted weights and
pose), and prints the figures beside the targets, and the shapes whose weights miss most (all of them,
with their bias, are in bench_fit.json). Landmarks come from MediaPipe (the normal use;
../shared/models/face_landmarker.task) or from the take's landmarks_gt.json (the detector taken
out of the error budget). Frames/s is the whole fit's wall time, landmark detection excluded
when the detections are cached. --brightness scales every frame as the fit reads it, after decoding
(not the landmark detector's), to stand for a darker face or exposure.
"""

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from shared_data import FACE_LANDMARKER, ICT_FULL, TAKES, takes_missing

import facecap.fit.feed as frame_feed
from facecap.animation import load_animation_json, save_animation_json
from facecap.config import load_config
from facecap.fit import FitConfig, fit_take
from facecap.fit.accuracy import animation_accuracy, true_identity, weight_errors_by_shape
from facecap.rig import load_rig

TARGETS = {"weight_mae_active": 0.05, "weight_mae_all": 0.01, "vertex_error_mean_mm": 0.3,
           "vertex_error_p95_mm": 1.0, "rotation_error_deg": 0.2, "translation_error_mm": 0.5}
WORST_SHAPES = 3  # printed per take


def bench_take(name: str, landmarks: str, overrides: list[str], out_dir: Path) -> dict:
    take = TAKES / name
    source = [f"landmarks.landmarks_file={take / 'landmarks_gt.json'}"] if landmarks == "truth" else \
        [f"landmarks.model_path={FACE_LANDMARKER}", f"landmarks.cache_dir={out_dir / 'landmarks_cache'}"]
    config = load_config(FitConfig, None, source + overrides)
    rig = load_rig(ICT_FULL)
    truth = load_animation_json(take / "ground_truth.json")
    identity = true_identity(truth, rig)
    result = fit_take(take, take / "calibration.json", rig, config, out_dir / name)
    save_animation_json(result.animation, out_dir / name / "animation.json")
    accuracy = animation_accuracy(rig, result.animation, truth, identity=identity).as_dict()
    seconds = result.seconds
    photometric_fps = result.animation.num_frames / max(seconds["total"] - seconds["landmarks"], 1e-9)
    return {"take": name, "landmarks": landmarks, "frames": result.animation.num_frames, **accuracy,
            "seconds": seconds, "frames_per_second": photometric_fps,
            "shape_errors": [asdict(e) for e in weight_errors_by_shape(rig, result.animation, truth)],
            "identity_error": float(np.abs(result.identity - identity).mean()) if len(result.identity) else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--takes", nargs="+", default=["dev_ict_4cam", "dev_ict_3cam_identity"])
    parser.add_argument("--landmarks", choices=["mediapipe", "truth"], default="mediapipe")
    parser.add_argument("--brightness", type=float, default=1.0, help="scale of the frames the fit sees")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("bench_fit"), help="output folder (fits, caches, JSON)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="fit config overrides key=value")
    args = parser.parse_args()
    if missing := takes_missing():
        print(missing, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if args.brightness != 1.0:
        to_device = frame_feed.frames_to_device
        frame_feed.frames_to_device = lambda stored, device: to_device(stored, device).mul_(args.brightness)
    rows = [{**bench_take(name, args.landmarks, args.overrides, args.out), "brightness": args.brightness}
            for name in args.takes]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_fit.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{'take':24s} " + " ".join(f"{k:>22s}" for k in TARGETS) + f" {'frames/s':>9s}")
    for row in rows:
        print(f"{row['take']:24s} " + " ".join(
            f"{row[k]:>15.4f} ({'ok' if row[k] <= v else 'NO'}) " for k, v in TARGETS.items())
            + f" {row['frames_per_second']:>9.3f}")
    print("targets: " + ", ".join(f"{k} <= {v}" for k, v in TARGETS.items()))
    for row in rows:
        print(f"{row['take']}: largest weight errors " + ", ".join(
            f"{e['name']} {e['mae']:.3f} (bias {e['bias']:+.3f}, {e['share']:.0%} of the MAE)"
            for e in row["shape_errors"][:WORST_SHAPES]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
