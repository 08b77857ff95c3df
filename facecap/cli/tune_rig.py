"""``facecap tune-rig``: tune the tracking rig so the tracker outputs the intended controls."""

import argparse
import json
from pathlib import Path

from facecap.cli.common import add_command, add_out_argument, config_from_args, prepare_output_dir
from facecap.errors import FacecapError
from facecap.rig import load_rig, save_rig
from facecap.tune import TuneConfig, load_expressions, make_simon_says, save_expressions, tune_rig

__all__ = ["register", "run"]


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "tune-rig",
        "Optimise the shape deltas the tracker uses (theta_T) so that tracking the expressions' meshes returns "
        "their intended controls, while the tracker still fits the geometry. The animation rig is unchanged: "
        "track with the tuned rig, export the weights against the animation rig (same shape names). "
        "Expressions: an npz (controls [N,K], meshes [N,V,3], shape_names [K], optional names [N], "
        "holdout [N]) or a folder of OBJs plus expressions.json (see facecap.tune.simon_says).",
        examples=["facecap tune-rig --rig ict_face.npz --make-example simon.npz",
                  "facecap tune-rig --rig ict_face.npz --expressions simon.npz --out tuned_rig.npz",
                  "facecap tune-rig --rig r.npz --expressions folder/ --out t.npz --set solver.max_iters=20"],
        config_cls=TuneConfig)
    parser.add_argument("--rig", type=Path, required=True, help="the animation rig npz (theta_R)")
    parser.add_argument("--expressions", type=Path, help="expressions npz or folder (intended controls + meshes)")
    add_out_argument(parser, "tuned tracking rig npz to write (report JSON beside it)", required=False)
    parser.add_argument("--make-example", type=Path, metavar="NPZ",
                        help="write a synthetic Simon-Says expressions npz from the rig and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rig = load_rig(args.rig)
    if args.make_example:
        expressions, _ = make_simon_says(rig)
        save_expressions(expressions, args.make_example)
        print(f"wrote {len(expressions.names)} expressions to {args.make_example}")
        return 0
    if args.expressions is None or args.out is None:
        raise FacecapError("--expressions and --out are required (or --make-example)")
    config = config_from_args(TuneConfig, args)
    result = tune_rig(rig, load_expressions(args.expressions), config)
    out_dir = prepare_output_dir(args.out.parent, config)
    save_rig(result.tracking_rig, args.out)
    report_path = out_dir / (args.out.stem + "_report.json")
    report_path.write_text(json.dumps(result.report, indent=1))
    for split, s in result.report["summary"].items():
        print(f"{split}: control RMSE {s['control_rmse_before']:.4f} -> {s['control_rmse_after']:.4f}, "
              f"tracking mesh RMS {s['tracking_mesh_rms_before']:.4f} -> {s['tracking_mesh_rms_after']:.4f} "
              f"{result.report['units']}")
    print(f"wrote {args.out} and {report_path}")
    return 0
