"""Table-10-like benchmark of `facecap tune-rig` on the ICT rig with a synthetic Simon-Says performer.

Tunes the CD tracker's rig on the training expressions and prints, per expression, the control
RMSE (all K controls) and the mesh RMS errors before/after. "track mesh" is |R(T(v); θ_T) - v| (the
tracker still fits the geometry), "anim mesh" is |R(T(v); θ_R) - v| (the animation rig replaying the
tracked controls). Usage: python tools/bench_tune_rig.py [--step 4] [--iters 15] [--json out.json]
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from shared_data import ICT_FACE

from facecap.config import load_config
from facecap.rig import load_rig
from facecap.tune import TuneConfig, make_simon_says, tune_rig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rig", type=Path, default=ICT_FACE)
    parser.add_argument("--step", type=int, default=4, help="keep every step-th vertex (1 = all)")
    parser.add_argument("--config", type=Path, default=None, help="tune-rig YAML config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config key=value")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rig = load_rig(args.rig)
    if args.step > 1:
        rig = rig.subset(np.arange(0, rig.num_vertices, args.step))
    expressions, _ = make_simon_says(rig)
    config = load_config(TuneConfig, args.config, args.overrides)
    start = time.perf_counter()
    result = tune_rig(rig, expressions, config)
    seconds = time.perf_counter() - start
    u = result.report["units"]
    print(f"\n{rig.num_vertices} vertices, {len(expressions.names)} expressions, {seconds:.0f} s; "
          f"stages: {[s['stage'] for s in result.report['stages']]}")
    print(f"| expression | split | control RMSE before | after | track mesh ({u}) before | after "
          f"| anim mesh ({u}) before | after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result.report["expressions"]:
        print(f"| {r['expression']} | {r['split']} | {r['control_rmse_before']:.4f} | {r['control_rmse_after']:.4f} "
              f"| {r['tracking_mesh_rms_before']:.4f} | {r['tracking_mesh_rms_after']:.4f} "
              f"| {r['animation_mesh_rms_before']:.4f} | {r['animation_mesh_rms_after']:.4f} |")
    for split, s in result.report["summary"].items():
        print(f"| **mean {split}** | | {s['control_rmse_before']:.4f} | {s['control_rmse_after']:.4f} "
              f"| {s['tracking_mesh_rms_before']:.4f} | {s['tracking_mesh_rms_after']:.4f} "
              f"| {s['animation_mesh_rms_before']:.4f} | {s['animation_mesh_rms_after']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(result.report, indent=1))


if __name__ == "__main__":
    main()
