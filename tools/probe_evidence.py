"""How firmly a ground-truth take determines each shape, and how far the sparsity prior shrinks it.

Usage:  python tools/probe_evidence.py [--take dev_ict_4cam] [--frames 8] [--landmarks none|truth]
                                       [--fit bench_fit/dev_ict_4cam/animation.json] [--top 15] [--set key=value ...]

It poses the ICT rig at the take's true weights, pose and identity on a few frames spread over
the take, solves the appearance there and linearises the fit's data terms, as the keyframe stage
sees them (facecap.testing.evidence). Per shape it prints the data terms' curvature for the
weight alone and with the batch's other weights, poses and albedos free, the share the others
cannot take over, the prior's slope, its shrinkage (how far that slope alone moves the weight
from the data's minimum) and the shift of all the prior's slopes together, with the shapes that
are on free. With --fit, the fitted animation's mean error on the same frames stands beside them.
Landmarks: none is what the sweeps see with MediaPipe (``loss.landmark_detected``, 0 by default);
truth adds the take's landmarks_gt.json at ``loss.landmark``. It takes seconds, a fit minutes.
"""

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from shared_data import ICT_FULL, SHARED, TAKES

from facecap.animation import load_animation_json
from facecap.camera import load_calibration
from facecap.camera.torch_camera import CameraTensors
from facecap.config import load_config
from facecap.fit import FitConfig
from facecap.fit.accuracy import true_identity, weights_in_rig_order
from facecap.fit.feed import read_batch
from facecap.fit.pipeline import take_loss, tracked_rig
from facecap.fit.problem import FitModel, SequenceState
from facecap.rig import load_rig
from facecap.take import open_take
from facecap.take.landmarks import load_landmarks
from facecap.testing.evidence import evidence_at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--take", default="dev_ict_4cam", help="a take of ../shared/data/takes")
    parser.add_argument("--frames", type=int, default=8, help="frames spread over the take")
    parser.add_argument("--landmarks", choices=["none", "truth"], default="none")
    parser.add_argument("--fit", type=Path, help="a fitted animation.json of the take, to compare with")
    parser.add_argument("--top", type=int, default=15, help="shapes shown, most shrunk first")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="fit config overrides key=value")
    args = parser.parse_args()
    take_dir = TAKES / args.take
    if not take_dir.is_dir() or not ICT_FULL.is_file():
        print(f"needs {take_dir} and the ICT rig under {SHARED} (set FACECAP_SHARED)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    config = load_config(FitConfig, None, args.overrides)
    if args.landmarks == "truth":
        config = replace(config, landmarks=replace(config.landmarks,
                                                   landmarks_file=str(take_dir / "landmarks_gt.json")))
    rig = load_rig(ICT_FULL)
    truth = load_animation_json(take_dir / "ground_truth.json")
    calibration = load_calibration(take_dir / "calibration.json")
    track, samples = tracked_rig(rig, calibration.units, config)
    model = FitModel.build(track, CameraTensors.from_calibration(calibration, device=device), samples, device)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)
    true_weights = weights_in_rig_order(truth, rig, truth.num_frames)
    state = SequenceState(weights=tensor(true_weights), R=tensor(truth.R), t=tensor(truth.t),
                          identity=tensor(true_identity(truth, rig)))
    frames = np.unique(np.linspace(0, truth.num_frames - 1, args.frames).round().astype(int))
    with open_take(take_dir, calibration) as take:
        batch = read_batch(take, frames, device, silhouettes=config.loss.silhouette > 0)
    loss = take_loss(config, model, state, batch, calibration.units).weights
    evidence = evidence_at(model, state, frames, batch.observations(load_landmarks(take_dir / "landmarks_gt.json"),
                                                                     1.0), loss)

    error = None
    if args.fit is not None:
        error = (weights_in_rig_order(load_animation_json(args.fit), rig, truth.num_frames) - true_weights)[frames]
    print(f"\n{args.take}, frames {frames.tolist()}, landmarks {args.landmarks}: per shape, the data terms' "
          "curvature alone and with the batch's other unknowns free, the share kept, the prior's slope, its "
          "shrinkage and the prior's joint shift (weight units)"
          + (", the fit's mean error on these frames" if error is not None else ""))
    print(f"{'shape':16s} {'truth':>6s} {'alone':>9s} {'free':>9s} {'kept':>5s} {'slope':>9s} {'shrink':>7s} "
          f"{'shift':>7s}" + (f" {'fit err':>8s}" if error is not None else ""))
    for k in np.argsort(-evidence.shrinkage)[:args.top]:
        print(f"{rig.shape_names[k]:16s} {true_weights[frames, k].mean():6.3f} {evidence.own[k]:9.2e} "
              f"{evidence.effective[k]:9.2e} {evidence.kept[k]:5.2f} {evidence.prior_slope[k]:9.2e} "
              f"{evidence.shrinkage[k]:7.3f} {evidence.prior_shift[k]:+7.3f}"
              + (f" {error[:, k].mean():+8.3f}" if error is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
