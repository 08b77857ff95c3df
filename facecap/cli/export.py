"""``facecap export``: the delivery files of a finished fit (or solve), without fitting again."""

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from facecap.animation import load_animation_json
from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.errors import ConfigError, FormatError
from facecap.export import export_animation
from facecap.export.config import ExportConfig
from facecap.fit.config import FitConfig
from facecap.fit.outputs import performer_rig
from facecap.publish import publishing
from facecap.rig.io import load_rig

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "export",
        "Write the delivery files of an animation.json: animation.csv (FBX-ready, with timecodes), livelink.csv "
        "(Live Link Face), animation.glb (glTF 2.0: the performer's mesh with its morph targets and the take's "
        "animation) and animation.fbx (through Blender), plus weights.png and head-stabilised meshes. The head "
        "moves in the performer frame (the rig's axes at the head's median pose) unless export.head_frame=world. "
        "The performer's mesh takes the fitted identity from the fit's report.json.",
        ["facecap export out/fit/animation.json --rig rig.npz --out out/delivery",
         "facecap export out/fit/animation.json --rig rig.npz --out out/delivery --formats csv,livelink,glb,fbx",
         "facecap export out/fit/animation.json --out out/arkit --formats livelink --set name_map=arkit_names.yaml"],
        config_cls=ExportConfig)
    parser.add_argument("animation", type=Path, help="animation.json (from facecap fit or facecap solve)")
    parser.add_argument("--rig", type=Path, help="the animation's rig npz (needed for glb, fbx and meshes)")
    parser.add_argument("--report", type=Path,
                        help="the fit's report.json, for the performer's identity (default: report.json beside the "
                             "animation, when there is one)")
    parser.add_argument("--formats", help="comma-separated formats, e.g. json,csv,livelink,glb,fbx (same as "
                                          "--set formats=[...])")
    add_out_argument(parser, "output folder")
    parser.set_defaults(func=run)


def _identity(report_path: Path | None, animation: Path) -> tuple[np.ndarray | None, dict]:
    """The fitted identity coefficients and the fit's config from report.json (None, {} without one)."""
    path = report_path or animation.with_name("report.json")
    if not path.is_file():
        if report_path is not None:
            raise FormatError(f"report not found: {report_path}")
        return None, {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return np.asarray(report["identity"], dtype=np.float64), report.get("config") or {}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{path}: not a fit report with an 'identity' list ({err})") from None


def run(args: argparse.Namespace) -> int:
    if args.formats:
        args.overrides.append(f"formats=[{args.formats}]")
    config = config_from_args(ExportConfig, args)
    anim = load_animation_json(args.animation)
    rig = identity = None
    if args.rig is not None:
        rig = load_rig(args.rig)
        identity, fit = _identity(args.report, args.animation)
        if identity is not None:
            # The identity refers to the modes the fit tracked with: the rig's, or its neutral correction.
            defaults = FitConfig()
            modes = FitConfig(neutral_degree=fit.get("neutral_degree", defaults.neutral_degree),
                              exclude_materials=fit.get("exclude_materials", defaults.exclude_materials))
            rig = performer_rig(rig, modes, anim.units)
    elif {"glb", "fbx"} & set(config.formats):
        raise ConfigError("glb and fbx need the rig: give --rig, or leave them out with --formats")
    with publishing(args.out, "export", config) as run:
        paths = export_animation(anim, run.staging, rig=rig, config=config, identity=identity)
    print(f"exported {anim.num_frames} frames: {', '.join(p.name for p in paths.values())} to {args.out}")
    return 0
