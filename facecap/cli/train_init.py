"""``facecap train-init``: train the learned initialiser of a rig on renders of it."""

import argparse
import json
from pathlib import Path
from typing import Any

from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.config import save_config
from facecap.learn.config import TrainInitConfig
from facecap.publish import now, publishing_files, run_record
from facecap.rig.io import load_rig

__all__ = ["register"]


def _companions(out: Path) -> tuple[Path, Path, Path]:
    """The files published beside the model ``out``: its validation curves, report and config."""
    return tuple(out.with_name(f"{out.stem}_{kind}") for kind in ("validation.png", "report.json", "config.yaml"))


def run(args: argparse.Namespace) -> int:
    from facecap.learn.modelfile import save_init_model
    from facecap.learn.train import plot_curves, train_init_model
    config = config_from_args(TrainInitConfig, args)
    rig = load_rig(args.rig)
    started = now()
    result = train_init_model(rig, config, args.work or args.out.with_name(args.out.stem + "_train"))
    curve, report, config_path = _companions(args.out)
    with publishing_files(args.out, curve, report, config_path) as (tmp_model, tmp_curve, tmp_report, tmp_config):
        save_init_model(result.model, tmp_model)
        plot_curves(result.history, tmp_curve)
        record = run_record("train-init", config, [p.name for p in (args.out, curve, report, config_path)], started)
        tmp_report.write_text(json.dumps({"seconds": result.seconds, "history": result.history, "run": record},
                                         indent=1))
        save_config(config, tmp_config)
    last = result.history[-1]
    print(f"trained {len(result.history)} epochs in {result.seconds:.0f} s: validation weight MAE "
          f"{last['val_weight_mae']:.4f}, head rotation {last['val_rotation_deg']:.2f} deg, reference point "
          f"{last['val_position_mm']:.1f} mm; wrote {args.out}, {curve.name}, {report.name} and {config_path.name}")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "train-init",
        "Renders random scenes of a rig (sparse co-activated expressions, identities, head poses, albedo, lighting "
        "and cameras around the head), cut into face crops by the landmarks' box as a take's frames are, and trains "
        "a small network that maps the crops of all views to blendshape weights, identity and head pose in one "
        "pass: a start for the fit (config key init.model of 'facecap fit'), and 'facecap preview' runs it alone. "
        "Writes the model to --out and, beside it, OUT_STEM_validation.png (the validation curves), "
        "OUT_STEM_report.json (figures per epoch, the run's command, config and versions) and "
        "OUT_STEM_config.yaml, all or nothing. The scenes are rendered once into the work folder, which also "
        "holds a checkpoint per epoch (a rerun with the same rig and settings resumes from it) and the curves "
        "so far.",
        ["facecap train-init --rig rig.npz -o init_model.pt",
         "facecap train-init --rig rig.npz -o init_model.pt --set train.device=cuda --set data.samples=50000",
         "facecap train-init --rig rig.npz -o tiny.pt --set data.samples=64 --set train.epochs=2"],
        config_cls=TrainInitConfig)
    parser.add_argument("--rig", type=Path, required=True, help="rig npz with Multi-PIE 68 landmark vertices")
    add_out_argument(parser, "the model file to write (e.g. init_model.pt)")
    parser.add_argument("--work", type=Path, help="folder of the rendered scenes, checkpoint and curves so far, kept "
                                                  "across runs (default: beside the model, OUT_STEM_train)")
    parser.set_defaults(func=run)
