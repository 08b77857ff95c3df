"""``facecap preview``: the learned initialiser alone over a take, written as the fit's exports."""

import argparse
import json
from pathlib import Path
from typing import Any

from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.errors import FormatError
from facecap.learn.config import PreviewConfig
from facecap.publish import publishing

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    from facecap.export.export import export_animation
    from facecap.learn.modelfile import load_init_model
    from facecap.learn.preview import preview_take
    from facecap.rig.io import load_rig
    config = config_from_args(PreviewConfig, args)
    model = load_init_model(args.model)
    rig = load_rig(args.rig) if args.rig else None
    if rig is not None and rig.shape_names != model.shape_names:
        raise FormatError(f"{args.rig}: its shapes are not the ones {args.model} was trained for")
    with publishing(args.out, "preview", config) as run:
        result = preview_take(args.take, args.calibration or args.take / "calibration.json", model, config,
                              run.cache)
        anim = result.animation
        paths = export_animation(anim, run.staging, rig=None if rig is None else rig.in_units(anim.units),
                                 config=config.export)
        paths["report"] = run.staging / "preview.json"
        paths["report"].write_text(json.dumps({
            "frames": anim.num_frames, "seconds": result.seconds,
            "frames_per_second": anim.num_frames / result.seconds,
            "interpolated_frames": [int(f) for f in anim.frame_numbers[~result.frame_ok]]}, indent=1))
    print(f"previewed {anim.num_frames} frames in {result.seconds:.1f} s ({anim.num_frames / result.seconds:.1f} "
          f"frames/s); wrote " + ", ".join(p.name for p in paths.values()) + f" to {args.out}")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "preview",
        "Runs the network of 'facecap train-init' alone over a take: per-frame blendshape weights and head pose "
        "in one pass per frame, for a first look within seconds. The face crops come from the landmarks (a "
        "landmarks file, or MediaPipe's detector, cached in --out's .facecap/cache), or with boxes=track from the "
        "head found in the frame before, the landmarks then needed on every anchor_frames-th frame only. "
        "Writes the delivery files of the export section (animation.json, animation.csv, livelink.csv, "
        "weights.png; animation.glb and meshes_head.npz with --rig) and preview.json (timing, interpolated "
        "frames), with config.yaml and run.json, into --out, all or nothing.",
        ["facecap preview take/ --model init_model.pt -o out/preview --set landmarks.model_path=face_landmarker.task",
         "facecap preview take/ --model init_model.pt --rig rig.npz -o out/preview "
         "--set landmarks.landmarks_file=take/landmarks.json --set boxes=track"],
        config_cls=PreviewConfig)
    parser.add_argument("take", type=Path, help="take folder (frame folders and/or videos per camera)")
    parser.add_argument("--model", type=Path, required=True, help="the model file of facecap train-init")
    parser.add_argument("--calibration", type=Path, help="calibration.json (default: TAKE/calibration.json)")
    parser.add_argument("--rig", type=Path, help="the rig the model was trained for, for animation.glb and the "
                                                 "head-space meshes")
    add_out_argument(parser, "output folder")
    parser.set_defaults(func=run)
