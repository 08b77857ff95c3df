"""``facecap tune-rig``: tune the tracking rig so the tracker outputs the intended controls."""

import argparse
import json
from pathlib import Path

from facecap.cli.common import add_command, add_out_argument, config_from_args, npz_path
from facecap.config import save_config
from facecap.errors import FacecapError
from facecap.publish import now, publishing_files, run_record
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
    add_out_argument(parser, "tuned tracking rig npz to write; NAME_report.json (with the run's command, config "
                             "and versions) and NAME_config.yaml go beside it", required=False)
    parser.add_argument("--make-example", type=Path, metavar="NPZ",
                        help="write a synthetic Simon-Says expressions npz from the rig and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rig = load_rig(args.rig)
    if args.make_example:
        expressions, _ = make_simon_says(rig)
        example = npz_path(args.make_example)
        with publishing_files(example) as (tmp,):
            save_expressions(expressions, tmp)
        print(f"wrote {len(expressions.names)} expressions to {example}")
        return 0
    if args.expressions is None or args.out is None:
        raise FacecapError("--expressions and --out are required (or --make-example)")
    config = config_from_args(TuneConfig, args)
    started = now()
    result = tune_rig(rig, load_expressions(args.expressions), config)
    out = npz_path(args.out)
    report_path, config_path = (out.with_name(f"{out.stem}_{kind}") for kind in ("report.json", "config.yaml"))
    with publishing_files(out, report_path, config_path) as (tmp_rig, tmp_report, tmp_config):
        save_rig(result.tracking_rig, tmp_rig)
        run = run_record("tune-rig", config, [p.name for p in (out, report_path, config_path)], started)
        tmp_report.write_text(json.dumps({**result.report, "run": run}, indent=1))
        save_config(config, tmp_config)
    for split, s in result.report["summary"].items():
        print(f"{split}: control RMSE {s['control_rmse_before']:.4f} -> {s['control_rmse_after']:.4f}, "
              f"tracking mesh RMS {s['tracking_mesh_rms_before']:.4f} -> {s['tracking_mesh_rms_after']:.4f} "
              f"{result.report['units']}")
    print(f"wrote {out}, {report_path.name} and {config_path.name}")
    return 0
