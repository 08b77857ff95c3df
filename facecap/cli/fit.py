"""``facecap fit``: per-frame weights and head pose of a multi-view take."""

import argparse
import logging
from pathlib import Path

from facecap.cli.common import add_command, add_out_argument, config_from_args, frame_span
from facecap.fit.actor import load_actor
from facecap.fit.config import FitConfig
from facecap.fit.outputs import write_fit_outputs
from facecap.fit.pipeline import fit_take
from facecap.publish import publishing
from facecap.rig.io import load_rig

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "fit",
        "Fit blendshape weights and head pose to every frame of a take by analysis by synthesis: landmarks are "
        "triangulated for the head pose and a coordinate-descent warm start, then a photometric fit refines "
        "weights, pose, identity, albedo, lighting and camera gains. Writes animation.json, the delivery files of "
        "the export section (animation.csv, livelink.csv, animation.glb; the head in the performer frame), "
        "stabilised meshes, weights.png, losses.png, report.json, and for review qa.mp4, errors.png and "
        "report.html, with config.yaml and run.json, into --out, all or nothing (a failed or interrupted run leaves "
        "the folder's previous results as they were). Landmark detections and checkpoints are kept in --out's "
        ".facecap/cache, across runs.",
        ["facecap fit take/ --calibration take/calibration.json --rig rig.npz --out out/fit "
         "--set landmarks.model_path=face_landmarker.task",
         "facecap fit take/ --rig rig.npz --out out/fit --set landmarks.landmarks_file=take/landmarks.json",
         "facecap fit take/ --rig rig.npz --out out/fit --frames 1200:1500   # a part of the take",
         "facecap fit take/ --rig rig.npz --out out/fit --resume             # after a kill: on from the checkpoint",
         "facecap fit take/ --rig rig.npz --out out/fit --actor actor.npz    # from the performer's profile",
         "facecap fit take/ --rig rig.npz --tracking-rig tuned_rig.npz --out out/fit --config configs/fit.yaml"],
        config_cls=FitConfig)
    parser.add_argument("take", type=Path, help="take folder (frame folders and/or videos per camera)")
    parser.add_argument("--calibration", type=Path, help="calibration.json (default: TAKE/calibration.json)")
    parser.add_argument("--rig", type=Path, required=True, help="animation rig npz: its shape names are exported")
    parser.add_argument("--tracking-rig", type=Path, help="rig to track with (from facecap tune-rig); default --rig")
    add_out_argument(parser, "output folder")
    parser.add_argument("--frames", type=frame_span, metavar="A:B",
                        help="fit frames A to B-1 of the take only (counted from its frame range's start; A: or :B "
                             "leave an end open); the exports number the frames as the take does")
    parser.add_argument("--actor", type=Path, metavar="ACTOR.npz",
                        help="start from the performer's profile (facecap actor build): its identity, albedo and "
                             "landmark detector offsets; the keyframe stage that would measure them is skipped")
    parser.add_argument("--resume", action="store_true",
                        help="continue a fit that was stopped (killed, interrupted) from its last checkpoint in "
                             "OUT/.facecap/cache; refused when the take, rig, landmarks or config differ")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(FitConfig, args)
    rig = load_rig(args.rig)
    tracking = load_rig(args.tracking_rig) if args.tracking_rig else None
    actor = load_actor(args.actor) if args.actor else None
    calibration = args.calibration or args.take / "calibration.json"
    with publishing(args.out, "fit", config) as run:
        result = fit_take(args.take, calibration, rig, config, run.staging, tracking_rig=tracking,
                          work_dir=run.cache, resume=args.resume, frames=args.frames, actor=actor)
        paths = write_fit_outputs(result, rig, config, run.staging)
    print(f"fitted {result.animation.num_frames} frames in {result.seconds['total']:.1f} s; wrote "
          + ", ".join(p.name for p in paths.values()) + f" to {args.out}")
    return 0
