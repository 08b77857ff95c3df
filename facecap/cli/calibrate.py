"""``facecap calibrate``: calibrate a camera rig from board images; ``facecap calibrate convert``: import one."""

import argparse
import logging
from pathlib import Path

from facecap.calibrate.api import calibrate
from facecap.calibrate.boards import board_presets
from facecap.calibrate.config import CalibrateConfig
from facecap.calibrate.convert import convert_calibration
from facecap.calibrate.report import format_table
from facecap.camera.model import save_calibration
from facecap.cli.common import add_command, add_out_argument, config_from_args
from facecap.errors import ConfigError
from facecap.publish import publishing_files

__all__ = ["register", "run", "run_convert"]


log = logging.getLogger(__name__)

EXAMPLES = [
    "facecap calibrate --camera 'data/left*.jpg' --camera 'data/right*.jpg' --board opencv_9x6 --out calib/",
    "facecap calibrate -c cam00=shoot/cam00 -c cam01=shoot/cam01 -c cam02=shoot/cam02 "
    "--board charuco_5x7_4x4 --out calib/",
    "facecap calibrate -c a.mp4 -c b.mp4 --board chessboard:9x6:25 --set sources.video_step=15 --out calib/",
    "facecap calibrate -c left/ --board opencv_9x6 --set intrinsics.fix_aspect=true "
    "--set detect.subpix_window=11 --out left_only/   # OpenCV sample settings",
    "facecap calibrate -c L/ -c R/ --board opencv_9x6 --world board:07 --all-overlays --out calib/",
    "facecap calibrate convert intrinsics.yml extrinsics.yml --image-size 640x480 --scale 25 -o calibration.json",
]


def _image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1920x1080, got {text!r}") from err
    return (w, h)


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "calibrate",
        "Detect a calibration board in each camera's images, calibrate each camera's lens, then solve all\n"
        "cameras' poses together (bundle adjustment with a robust loss), rejecting views that do not fit.\n"
        "Writes calibration.json, report.json (per-camera and per-image RMS, rejected images), residuals.png,\n"
        "rig.png, overlays/, config.yaml and run.json into --out, all or nothing.\n\n"
        "A camera source is a folder of images (paired across cameras by file name, or by order), a glob\n"
        "pattern in quotes (paired by the number in the file name: left07.jpg with right07.jpg), or a video\n"
        f"(sampled every sources.video_step frames). Board presets: {', '.join(board_presets())};\n"
        "or a board YAML file, or TYPE:COLSxROWS:SQUARE[:MARKER[:DICT]] in mm (chessboard counts inner corners).\n\n"
        "To import another tool's calibration instead: facecap calibrate convert --help",
        EXAMPLES, config_cls=CalibrateConfig)
    parser.add_argument("-c", "--camera", action="append", default=[], metavar="[NAME=]SOURCE",
                        help="one camera's folder, 'glob*.jpg' or video; repeat per camera (first = world)")
    parser.add_argument("-b", "--board", help="board preset, YAML file or spec (overrides config key 'board')")
    parser.add_argument("--world", help="'first_camera' or 'board:KEY' (overrides config key 'world')")
    parser.add_argument("--all-overlays", action="store_true", help="write a detection overlay for every image")
    add_out_argument(parser, "output folder", required=False)
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(title="subcommands", metavar="<subcommand>")
    conv = sub.add_parser(
        "convert", help="import an OpenCV, multical or fpc-diffrend calibration",
        description="Convert another tool's calibration into facecap's calibration.json.\n\n"
                    "opencv: YAML/XML of OpenCV's samples (calibration.cpp: camera_matrix...; stereo_calib.cpp:\n"
                    "  intrinsics.yml M1 D1 M2 D2 and extrinsics.yml R T, x2 = R x1 + T). Translations are in the\n"
                    "  square-size unit used when calibrating: --scale converts (stereo_calib uses unit squares).\n"
                    "multical: calibration.json with cameras and camera_poses (master -> camera), metres.\n"
                    "fpc: fpc-diffrend calibration.json, per camera intrinsic, distortion, rotation, translation.",
        epilog="examples:\n  facecap calibrate convert left_intrinsics.yml -o calibration.json\n"
               "  facecap calibrate convert intrinsics.yml extrinsics.yml --image-size 640x480 --scale 25 "
               "--names left,right -o calibration.json\n"
               "  facecap calibrate convert multical/calibration.json --units m -o calibration.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("inputs", nargs="+", type=Path, help="calibration file(s) to import")
    add_out_argument(conv, "calibration.json to write")
    conv.add_argument("--from", dest="fmt", default="auto", choices=["auto", "opencv", "multical", "fpc", "facecap"],
                      help="input format (auto: YAML/XML is opencv, JSON by its keys)")
    conv.add_argument("--units", choices=["mm", "cm", "m"], help="units of the translations after --scale")
    conv.add_argument("--scale", type=float, default=1.0, help="multiply translations by this (default 1)")
    conv.add_argument("--image-size", type=_image_size, help="WIDTHxHEIGHT when the file does not record it")
    conv.add_argument("--names", help="comma-separated camera names, in file order")
    conv.set_defaults(func=run_convert, command_name="calibrate convert")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(CalibrateConfig, args)
    if args.board:
        config.board = args.board
    if args.world:
        config.world = args.world
    if args.all_overlays:
        config.detect.overlays = -1
    if not args.camera:
        raise ConfigError("give each camera's images with --camera [NAME=]SOURCE (see facecap calibrate --help)")
    if args.out is None:
        raise ConfigError("give the output folder with --out DIR")
    names, specs = [], []
    for item in args.camera:
        name, sep, spec = item.partition("=")
        named = bool(sep) and not Path(item).exists()
        names.append(name if named else None)
        specs.append(spec if named else item)
    result = calibrate(specs, config.board, config, args.out,
                       names=[n or "" for n in names] if any(names) else None)
    print(format_table(result.report))
    print(f"wrote {args.out / 'calibration.json'} (joint RMS {result.bundle.rms_px:.3f} px, "
          f"{len(result.report['rejected'])} views rejected)")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    calib = convert_calibration(args.inputs, args.fmt, args.units, args.image_size, names, args.scale)
    with publishing_files(args.out) as (tmp,):
        save_calibration(calib, tmp)
    print(f"wrote {args.out}: {len(calib.cameras)} cameras ({', '.join(calib.names)}), units {calib.units}")
    return 0
