"""``facecap synth``: write a synthetic multi-view take with ground truth, from any rig."""

import argparse
from pathlib import Path
from typing import Any

from facecap.animation import load_animation_json
from facecap.camera.model import load_calibration
from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.publish import publishing
from facecap.rig.demo_head import build_demo_head
from facecap.rig.io import load_rig
from facecap.synth import SynthConfig, default_scene, synthesize_take

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    config = config_from_args(SynthConfig, args)
    rig = load_rig(args.rig) if args.rig is not None else build_demo_head()
    calibration = load_calibration(args.calibration) if args.calibration else None
    animation = load_animation_json(args.animation) if args.animation else None
    calibration, animation = default_scene(rig, config, calibration, animation)
    with publishing(args.out, "synth", config) as run:
        synthesize_take(rig, calibration, animation, run.staging, config)
    print(f"wrote {args.out}: {len(calibration.cameras)} cameras x {animation.num_frames} frames, "
          f"{config.image_format}, ground truth in ground_truth.json")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "synth",
        "Renders a rig's performance into calibrated cameras and writes a take (docs/formats.md §2): one frame "
        "folder or mp4 per camera, take.json, calibration.json and ground_truth.json (the animation plus a "
        "'generator' block with the lights, camera gains and noise). Without --calibration a ring of cameras "
        "is generated; without --animation a smooth random performance is. The rig defaults to the built-in "
        "demo head. Rendering uses the torch rasteriser on the CPU unless configured otherwise.",
        examples=["facecap synth --out out/synth_take",
                  "facecap synth --out out/ict_take --rig ../shared/data/rigs/ict_face.npz --set motion.num_frames=30",
                  "facecap synth --out out/take --calibration calibration.json --animation animation.json "
                  "--set image_format=mp4"],
        config_cls=SynthConfig)
    add_out_argument(parser, "take folder to write")
    parser.add_argument("--rig", type=Path, help="rig .npz (default: the built-in demo head)")
    parser.add_argument("--calibration", type=Path, help="calibration.json (default: a generated camera ring)")
    parser.add_argument("--animation", type=Path, help="animation JSON of weights and head poses "
                                                       "(default: a generated performance)")
    parser.set_defaults(func=run)
