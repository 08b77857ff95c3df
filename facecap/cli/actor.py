"""``facecap actor``: build a performer's profile from their takes, or show one."""

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from facecap.cli.common import add_command, add_config_options, add_out_argument, config_from_args, frame_span, \
    npz_path
from facecap.fit.actor import ActorProfile, ProfileTake, build_actor_profile, load_actor, save_actor
from facecap.fit.config import FitConfig
from facecap.publish import PRIVATE_DIR
from facecap.rig.io import load_rig

__all__ = ["register", "describe_actor"]


def describe_actor(profile: ActorProfile) -> list[str]:
    """Human-readable summary lines: what the profile was built from and what it holds."""
    seen = (profile.albedo_evidence > 0).any(1)
    lines = [f"built from {len(profile.takes)} take(s):"]
    lines += [f"  {t['take']} frames {t['frames'][0]}..{t['frames'][1] - 1}, {len(t['keyframes'])} keyframes, "
              f"cameras {', '.join(t['cameras'])}" for t in profile.takes]
    modes = "neutral correction" if "neutral_correction" in profile.basis else "identity modes"
    lines.append(f"identity: {len(profile.identity)} coefficients of the rig's {modes}, RMS "
                 f"{float(np.sqrt(np.mean(profile.identity ** 2))) if profile.identity.size else 0.0:.3f}")
    lines.append(f"albedo: {int(seen.sum())} of {len(seen)} rig vertices seen")
    if profile.detector_offsets is None:
        lines.append("detector offsets: none (built from landmarks files)")
    else:
        size = np.linalg.norm(profile.detector_offsets, axis=-1)
        lines += [f"detector offsets, camera {name}: median {np.median(size[c]):.1f} px over {len(size[c])} landmarks, "
                  f"{int(profile.offset_takes[c])} take(s)" for c, name in enumerate(profile.cameras)]
    return lines


def _build(args: argparse.Namespace) -> int:
    config = config_from_args(FitConfig, args)
    rig = load_rig(args.tracking_rig or args.rig)
    out = npz_path(args.out)
    start = load_actor(args.add_to) if args.add_to else None
    takes = [ProfileTake(take, args.calibration, args.frames) for take in args.takes]
    work = out.resolve().parent / PRIVATE_DIR / "cache" / out.stem
    profile = build_actor_profile(takes, rig, config, work, start=start)
    save_actor(profile, out)
    print(f"wrote {out}")
    print("\n".join(describe_actor(profile)))
    return 0


def _show(args: argparse.Namespace) -> int:
    print(f"{args.actor}:")
    print("\n".join(describe_actor(load_actor(args.actor))))
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "actor",
        "An actor profile holds what the fit learns of a performer, not of a take: the identity (the rig's "
        "identity modes, or its smooth neutral correction), the albedo of every rig vertex, and the landmark "
        "detector's offsets per camera. 'build' fits the keyframes of the takes given, one after another, "
        "adding up their evidence; 'facecap fit --actor' and 'facecap batch' then start every take of the "
        "performer from it and skip the keyframe stage. The detector offsets hold for the cameras they were "
        "measured with; a take with other cameras measures them again in a short keyframe stage. The fit's "
        "config keys (facecap fit --help) choose the landmarks, keyframes and samples.",
        examples=["facecap actor build day1/take01 day1/take07 --rig rig.npz -o anna.npz "
                  "--set landmarks.model_path=face_landmarker.task",
                  "facecap actor build day2/take03 --rig rig.npz --add-to anna.npz -o anna.npz",
                  "facecap actor build take/ --rig rig.npz --frames 0:600 -o anna.npz   # a part of a take",
                  "facecap actor show anna.npz"])
    sub = parser.add_subparsers(title="actor commands", metavar="<actor command>", required=True)
    build = sub.add_parser("build", help="fit the keyframes of a performer's takes and write their profile")
    build.add_argument("takes", type=Path, nargs="+", help="take folders of the performer")
    build.add_argument("--rig", type=Path, required=True, help="the rig the fits track with")
    build.add_argument("--tracking-rig", type=Path, help="a tuned rig to track with (facecap tune-rig); default --rig")
    build.add_argument("--calibration", type=Path,
                       help="calibration.json of every take (default: each take's own calibration.json)")
    build.add_argument("--frames", type=frame_span, metavar="A:B",
                       help="use frames A to B-1 of each take (counted from its frame range's start)")
    build.add_argument("--add-to", type=Path, metavar="ACTOR.npz",
                       help="a profile of the performer to add these takes' evidence to")
    add_out_argument(build, "actor profile .npz to write")
    add_config_options(build, FitConfig)
    build.set_defaults(func=_build)
    show = sub.add_parser("show", help="print what a profile was built from and what it holds")
    show.add_argument("actor", type=Path, help="actor profile .npz")
    show.set_defaults(func=_show)
