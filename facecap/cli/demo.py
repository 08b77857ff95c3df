"""``facecap demo``: the whole pipeline on a built-in synthetic take, scored against its truth."""

import argparse
import time
from pathlib import Path

from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.demo import DemoConfig, run_demo
from facecap.publish import publishing


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "demo",
        "Runs everything with no data files: builds the procedural demo head, renders a short multi-view "
        "take with ground truth, fits it (landmark init + analysis by synthesis), exports animation.json, "
        "animation.csv, livelink.csv and meshes, and prints the accuracy against the truth.",
        ["facecap demo", "facecap demo --out out/demo --set synth.motion.num_frames=30",
         "facecap demo --set model_path=face_landmarker.task    # the real MediaPipe detector"],
        config_cls=DemoConfig)
    add_out_argument(parser, "output folder (default out/demo)", default=Path("out/demo"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(DemoConfig, args)
    start = time.perf_counter()
    with publishing(args.out, "demo", config) as run:
        accuracy = run_demo(config, run.staging, published_as=args.out)
    print(f"demo: {accuracy.frames} frames in {time.perf_counter() - start:.0f} s, outputs in {args.out}")
    print(f"accuracy vs ground truth: {accuracy.summary()}")
    return 0
