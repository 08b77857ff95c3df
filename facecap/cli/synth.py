"""``facecap synth``: write a synthetic multi-view take with ground truth, from any rig."""

import argparse
from pathlib import Path
from typing import Any

from facecap.camera.model import load_calibration
from facecap.cli.common import add_command, config_from_args, prepare_output_dir
from facecap.export import load_animation_json
from facecap.rig import Rig
from facecap.rig.io import load_rig
from facecap.synth import SynthConfig, default_scene, synthesize_take

__all__ = ["COMMAND", "ORDER", "register"]

COMMAND = "synth"
ORDER = 30


def _load_rig(path: Path | None) -> Rig:
    if path is not None:
        return load_rig(path)
    from facecap.rig.demo_head import build_demo_head
    return build_demo_head()


def run(args: argparse.Namespace) -> int:
    config = config_from_args(SynthConfig, args)
    rig = _load_rig(args.rig)
    calibration = load_calibration(args.calibration) if args.calibration else None
    animation = load_animation_json(args.animation) if args.animation else None
    calibration, animation = default_scene(rig, config, calibration, animation)
    out = prepare_output_dir(args.out, config)
    synthesize_take(rig, calibration, animation, out, config)
    print(f"wrote {out}: {len(calibration.cameras)} cameras x {animation.num_frames} frames, "
          f"{config.image_format}, ground truth in ground_truth.json")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, COMMAND, "render a synthetic take with ground truth (for testing and tuning)",
        "Renders a rig's performance into calibrated cameras and writes a take (FORMATS.md §2): one frame "
        "folder or mp4 per camera, take.json, calibration.json and ground_truth.json (the animation plus a "
        "'generator' block with the lights, camera gains and noise). Without --calibration a ring of cameras "
        "is generated; without --animation a smooth random performance is. The rig defaults to the built-in "
        "demo head. Rendering uses the torch rasteriser on the CPU unless configured otherwise.",
        examples=["facecap synth out/synth_take",
                  "facecap synth out/ict_take --rig ../shared/data/rigs/ict_face.npz --set motion.num_frames=30",
                  "facecap synth out/take --calibration calibration.json --animation animation.json "
                  "--set image_format=mp4"],
        config_cls=SynthConfig)
    parser.add_argument("out", type=Path, help="take folder to write")
    parser.add_argument("--rig", type=Path, help="rig .npz (default: the built-in demo head)")
    parser.add_argument("--calibration", type=Path, help="calibration.json (default: a generated camera ring)")
    parser.add_argument("--animation", type=Path, help="animation JSON of weights and head poses "
                                                       "(default: a generated performance)")
    parser.set_defaults(func=run)
