"""``facecap train-init``: train the learned initialiser of a rig on renders of it."""

import argparse
from pathlib import Path
from typing import Any

from facecap.cli.common import add_command, add_out_argument, config_from_args, prepare_output_dir
from facecap.learn.config import TrainInitConfig
from facecap.rig.io import load_rig

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    from facecap.learn.train import train_init_model
    config = config_from_args(TrainInitConfig, args)
    rig = load_rig(args.rig)
    work = prepare_output_dir(args.work or args.out.with_name(args.out.stem + "_train"), config)
    result = train_init_model(rig, config, args.out, work)
    last = result.history[-1]
    print(f"trained {len(result.history)} epochs in {result.seconds:.0f} s: validation weight MAE "
          f"{last['val_weight_mae']:.4f}, head rotation {last['val_rotation_deg']:.2f} deg, reference point "
          f"{last['val_position_mm']:.1f} mm; wrote {result.model_path} (curves: {result.curve_path})")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "train-init",
        "Renders random scenes of a rig (sparse co-activated expressions, identities, head poses, albedo, lighting "
        "and cameras around the head), cut into face crops by the landmarks' box as a take's frames are, and trains "
        "a small network that maps the crops of all views to blendshape weights, identity and head pose in one "
        "pass: a start for the fit, and 'facecap preview' runs it alone. The scenes "
        "are rendered once into the work folder, with a checkpoint per epoch (a rerun resumes) and the validation "
        "curves in validation.png.",
        ["facecap train-init --rig rig.npz -o init_model.pt",
         "facecap train-init --rig rig.npz -o init_model.pt --set train.device=cuda --set data.samples=50000",
         "facecap train-init --rig rig.npz -o tiny.pt --set data.samples=64 --set train.epochs=2"],
        config_cls=TrainInitConfig)
    parser.add_argument("--rig", type=Path, required=True, help="rig npz with Multi-PIE 68 landmark vertices")
    add_out_argument(parser, "the model file to write (e.g. init_model.pt)")
    parser.add_argument("--work", type=Path, help="folder of the rendered scenes, checkpoint and curves "
                                                  "(default: beside the model, OUT_STEM_train)")
    parser.set_defaults(func=run)
