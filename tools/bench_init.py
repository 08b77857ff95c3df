"""Benchmark the learned initialiser on the ground-truth takes: its start against the landmark + CD start, the
preview's speed and accuracy, and (with --fit) the photometric fit from either start.

Usage:  python tools/bench_init.py --model init_model.pt [--takes dev_ict_4cam dev_ict_3cam_identity]
            [--landmarks mediapipe|truth] [--threads 2] [--repeats 3] [--out bench_init]
            [--fit] [--fit-set key=value ...] [--network-fit-set key=value ...] [--fit-frames A B]

For each take of ../shared/data/takes (or $FACECAP_SHARED/data/takes), with the ICT rig:
- the landmark + CD start (``facecap fit --set photometric=false``: what the fit starts from) and the
  network's start from the same landmarks, with its own head pose and with the landmark start's pose,
  scored by facecap.fit.accuracy against ground_truth.json; the ratio of the weight MAEs is the figure
  to halve;
- the preview (``facecap preview`` with its defaults: crops from every frame's landmarks), its frames/s
  (the median of --repeats runs, model loading excluded) and its accuracy;
- with --fit, the photometric fit from the landmark start (its config plus --fit-set) and from the
  network's start (``init.model``, plus --network-fit-set, e.g. a schedule without keyframes): accuracy
  and seconds of each; the speed-up is the ratio of their times after the landmarks.
Landmarks come from MediaPipe (cached under --out) or from the takes' landmarks_gt.json.
"""

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from shared_data import FACE_LANDMARKER, ICT_FULL, TAKES, takes_missing

import facecap.fit.pipeline as pipeline
from facecap.animation import Animation, load_animation_json
from facecap.camera.model import load_calibration
from facecap.config import load_config
from facecap.fit import FitConfig, fit_take
from facecap.fit.accuracy import animation_accuracy, true_identity
from facecap.learn.config import PreviewConfig
from facecap.learn.infer import initialise_from_network
from facecap.learn.modelfile import load_init_model
from facecap.learn.preview import preview_take
from facecap.rig import load_rig
from facecap.take.reader import open_take

FIGURES = ("weight_mae_all", "weight_mae_active", "vertex_error_mean_mm", "rotation_error_deg", "translation_error_mm")


def _landmark_settings(take: Path, landmarks: str, out: Path) -> list[str]:
    if landmarks == "truth":
        return [f"landmarks.landmarks_file={take / 'landmarks_gt.json'}"]
    return [f"landmarks.model_path={FACE_LANDMARKER}", f"landmarks.cache_dir={out / 'landmarks_cache'}"]


def _score(rig, anim: Animation, truth: Animation) -> dict[str, float]:
    report = animation_accuracy(rig, anim, truth, identity=true_identity(truth, rig)).as_dict()
    return {k: report[k] for k in FIGURES}


def _starts(name: str, model, rig, settings: list[str], out: Path) -> dict:
    """The landmark + CD start and the network's, scored."""
    take_path = TAKES / name
    truth = load_animation_json(take_path / "ground_truth.json")
    config = load_config(FitConfig, None, settings + ["photometric=false", "qa_video=false"])
    landmark_start = fit_take(take_path, take_path / "calibration.json", rig, config, out / name / "landmark_start")
    with open_take(take_path, load_calibration(take_path / "calibration.json")) as take:
        calib = take.calibration
        track, _ = pipeline.tracked_rig(rig, calib.units, config)
        landmarks = pipeline.load_fit_landmarks(take, config, out / name)
        clock = time.perf_counter()
        init = initialise_from_network(model, take, landmarks, calib, track)
        seconds = time.perf_counter() - clock
    network = Animation(rig.shape_names, init.weights, init.R, init.t, truth.fps, calib.units)
    with_landmark_pose = replace(network, R=landmark_start.animation.R, t=landmark_start.animation.t)
    return {"landmark_cd": {**_score(rig, landmark_start.animation, truth), "seconds": landmark_start.seconds["init"]},
            "network": {**_score(rig, network, truth), "seconds": seconds},
            "network_landmark_pose": _score(rig, with_landmark_pose, truth)}


def _preview(name: str, model, rig, settings: list[str], repeats: int, out: Path) -> dict:
    take_path = TAKES / name
    truth = load_animation_json(take_path / "ground_truth.json")
    config = load_config(PreviewConfig, None, [s for s in settings if s.startswith("landmarks.")])
    runs = [preview_take(take_path, take_path / "calibration.json", model, config, out / name / "preview")
            for _ in range(repeats)]
    fps = [r.animation.num_frames / r.seconds for r in runs]
    return {**_score(rig, runs[-1].animation, truth), "frames_per_second": statistics.median(fps),
            "frames_per_second_runs": fps}


def _fits(name: str, model_path: Path, rig, settings: list[str], baseline_set: list[str], network_set: list[str],
          frames: tuple[int, int] | None, out: Path) -> dict:
    """The photometric fit from the landmark start, and from the network's (see the module docstring)."""
    take_path = TAKES / name
    truth = load_animation_json(take_path / "ground_truth.json")
    if frames is not None:
        part = slice(*frames)
        truth = replace(truth, weights=truth.weights[part], R=truth.R[part], t=truth.t[part],
                        frames=None if truth.frames is None else truth.frames[part])
    rows = {}
    for label, extra in (("from_landmarks", baseline_set), ("from_network", [f"init.model={model_path}",
                                                                              *network_set])):
        config = load_config(FitConfig, None, settings + ["qa_video=false"] + extra)
        result = fit_take(take_path, take_path / "calibration.json", rig, config, out / name / label, frames=frames)
        rows[label] = {**_score(rig, result.animation, truth), "seconds": result.seconds,
                       "settings": extra}
    base, net = rows["from_landmarks"]["seconds"], rows["from_network"]["seconds"]
    rows["speedup"] = (base["total"] - base["landmarks"]) / max(net["total"] - net["landmarks"], 1e-9)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="init_model.pt of facecap train-init")
    parser.add_argument("--takes", nargs="+", default=["dev_ict_4cam", "dev_ict_3cam_identity"])
    parser.add_argument("--landmarks", choices=["mediapipe", "truth"], default="mediapipe")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="preview runs timed per take (median reported)")
    parser.add_argument("--out", type=Path, default=Path("bench_init"), help="output folder (fits, caches, JSON)")
    parser.add_argument("--fit", action="store_true", help="also run the photometric fit from both starts")
    parser.add_argument("--fit-set", dest="fit_set", nargs="*", default=[], help="overrides of both fits")
    parser.add_argument("--fit-frames", type=int, nargs=2, metavar=("A", "B"),
                        help="fit frames A to B-1 of each take only (the starts and the preview see every frame)")
    parser.add_argument("--network-fit-set", dest="network_set", nargs="*", default=[],
                        help="overrides of the fit from the network's start only (e.g. a shorter schedule)")
    args = parser.parse_args()
    if missing := takes_missing():
        print(missing, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    rig, model = load_rig(ICT_FULL), load_init_model(args.model)
    rows = []
    for name in args.takes:
        settings = _landmark_settings(TAKES / name, args.landmarks, args.out)
        row = {"take": name, "landmarks": args.landmarks, **_starts(name, model, rig, settings, args.out),
               "preview": _preview(name, model, rig, settings, args.repeats, args.out)}
        if args.fit:
            row["fit"] = _fits(name, args.model, rig, settings, args.fit_set, args.fit_set + args.network_set,
                               args.fit_frames, args.out)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_init.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{'take':22s} {'start':22s} " + " ".join(f"{k:>21s}" for k in FIGURES))
    for row in rows:
        for label in ("landmark_cd", "network", "network_landmark_pose", "preview"):
            print(f"{row['take']:22s} {label:22s} " + " ".join(f"{row[label][k]:>21.4f}" for k in FIGURES))
        ratio = row["network"]["weight_mae_all"] / row["landmark_cd"]["weight_mae_all"]
        print(f"{row['take']}: network / landmark + CD weight MAE {ratio:.2f} (target <= 0.5); preview "
              f"{row['preview']['frames_per_second']:.1f} frames/s (target >= 10) with {args.threads} threads")
        if "fit" in row:
            for label in ("from_landmarks", "from_network"):
                fit = row["fit"][label]
                print(f"  fit {label:15s} " + " ".join(f"{k} {fit[k]:.4f}" for k in FIGURES)
                      + f"  {fit['seconds']['total'] - fit['seconds']['landmarks']:.1f} s")
            print(f"  photometric fit speed-up from the network's start: {row['fit']['speedup']:.2f}x (target 1.5x "
                  "at the landmark start's final accuracy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
