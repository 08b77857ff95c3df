"""``facecap solve``: blendshape weights for a sequence of target meshes, written as the standard exports."""

import argparse
import logging
from pathlib import Path
from typing import Any

from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.export import export_animation
from facecap.publish import publishing
from facecap.rig.io import load_rig
from facecap.solve.sequence import SolveConfig, load_target_meshes, solve_mesh_sequence

__all__ = ["register"]


log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "solve",
        "Fit the rig's weights to target meshes by coordinate descent on Rackovic et al.'s objective "
        "(SIGGRAPH Asia 2024): mesh fidelity with correctives, l1 sparsity and temporal roughness, weights "
        "in [0, 1], the whole sequence at once. MESHES is an npz with key 'vertices' [T, V, 3] or a folder "
        "of OBJs (read in name order), with the rig's vertex order and in the rig's units. The meshes are "
        "taken to be in head space; --align first removes a rigid head motion per frame (Procrustes on the "
        "vertices the rig's shapes move least) and writes it as the head pose. Writes animation.json, "
        "animation.csv, livelink.csv (when the names map to ARKit), weights.png, meshes_head.npz, config.yaml and "
        "run.json, all or nothing. The meshes' size is checked against the rig's: meshes in another unit are an error.",
        examples=["facecap solve --rig rig.npz --meshes takes/meshes.npz --out out/solve",
                  "facecap solve --rig rig.npz --meshes objs/ --out out/solve --align --set cd.lambda_smooth=10"],
        config_cls=SolveConfig)
    parser.add_argument("--rig", type=Path, required=True, help="rig .npz file")
    parser.add_argument("--meshes", type=Path, required=True, help="npz with 'vertices' [T, V, 3], or an OBJ folder")
    add_out_argument(parser, "output folder")
    parser.add_argument("--align", action="store_true", help="rigidly align each mesh first (same as --set align=true)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(SolveConfig, args)
    if args.align:
        config.align = True
    rig = load_rig(args.rig)
    meshes = load_target_meshes(args.meshes)
    with publishing(args.out, "solve", config) as run:
        anim, result = solve_mesh_sequence(rig, meshes, config)
        paths = export_animation(anim, run.staging, rig=rig)
    print(f"solved {anim.num_frames} frames: J = {result.objective:.6g} after {result.sweeps} sweeps; "
          f"wrote {', '.join(p.name for p in paths.values())} to {args.out}")
    return 0
