"""``calibrate``: board images of several cameras in, calibration.json and a report out.

Stages: detect (streamed) -> per-camera intrinsics (OpenCV) -> spanning-tree initial poses ->
bundle adjustment with view rejection -> world frame -> outputs. The outputs are published all or nothing
(:mod:`facecap.publish`): a failed or interrupted run leaves no half-written calibration and the folder's
previous one as it was.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facecap.calibrate.boards import Board, load_board
from facecap.calibrate.bundle import BundleResult, Observations, solve_rig, view_rms
from facecap.calibrate.config import CalibrateConfig
from facecap.calibrate.detect import Detections, detect_sources
from facecap.calibrate.extrinsics import init_camera_poses, init_frame_poses, pose_matrix
from facecap.calibrate.intrinsics import Intrinsics, calibrate_intrinsics
from facecap.calibrate.report import format_table, plot_residuals, plot_rig, write_report_json
from facecap.calibrate.sources import CameraSource, natural_key, open_sources
from facecap.camera.model import Calibration, Camera, save_calibration
from facecap.config import config_to_dict
from facecap.errors import ConfigError, FacecapError
from facecap.publish import publishing

__all__ = ["CalibrationResult", "calibrate", "solve_detections", "OUTPUT_FILES"]

log = logging.getLogger(__name__)

OUTPUT_FILES = ("calibration.json", "report.json", "residuals.png", "rig.png")


@dataclass
class CalibrationResult:
    """Everything a run found. ``frame_keys``: [F] pairing keys; ``bundle.frame_poses``: [F, 4, 4] T_world_board."""

    calibration: Calibration
    detections: Detections
    intrinsics: dict[str, Intrinsics]
    bundle: BundleResult
    frame_keys: list[str]
    report: dict[str, Any]
    out_dir: Path | None = None


def _world_transform(world: str, frame_keys: list[str], frame_poses: np.ndarray) -> np.ndarray:
    """[4, 4] T_oldworld_newworld for ``world`` ('first_camera' or 'board:KEY')."""
    if world == "first_camera":
        return np.eye(4)
    kind, _, key = world.partition(":")
    if kind != "board" or not key:
        raise ConfigError(f"config key 'world': expected 'first_camera' or 'board:KEY', got {world!r}")
    if key not in frame_keys or not np.isfinite(frame_poses[frame_keys.index(key)]).all():
        raise ConfigError(f"world {world!r}: no kept view of the board has key {key!r} "
                          f"(keys: {', '.join(k for k, T in zip(frame_keys, frame_poses) if np.isfinite(T).all())})")
    return frame_poses[frame_keys.index(key)]


def solve_detections(detections: Detections, config: CalibrateConfig) -> CalibrationResult:
    """Intrinsics, joint extrinsics and the report from detections (no files written)."""
    board, names = detections.board, detections.cameras
    if not detections.found():
        raise FacecapError(f"the board ({board.type} {board.cols}x{board.rows}) was not found in any of "
                           f"{len(detections.views)} images: check the board settings (cols, rows count inner "
                           f"corners for a chessboard) and the images")
    intrinsics = {n: calibrate_intrinsics(detections.found(n), board, detections.image_sizes.get(n, (1, 1)),
                                      config.intrinsics, n) for n in names}
    views = detections.found()
    frame_keys = sorted({v.key for v in views}, key=natural_key)
    frame_of = {k: i for i, k in enumerate(frame_keys)}
    board_in_cam, counters = {}, dict.fromkeys(names, 0)
    for v in views:
        i = counters[v.camera]
        counters[v.camera] += 1
        board_in_cam[(names.index(v.camera), frame_of[v.key])] = pose_matrix(intrinsics[v.camera].rvecs[i],
                                                                           intrinsics[v.camera].tvecs[i])
    cam_poses = init_camera_poses(board_in_cam, names)
    init_frames = init_frame_poses(board_in_cam, cam_poses)
    frame_poses = np.stack([init_frames[f] for f in range(len(frame_keys))])
    obj = board.object_points()
    obs = Observations(cam=np.concatenate([np.full(len(v.ids), names.index(v.camera)) for v in views]),
                       frame=np.concatenate([np.full(len(v.ids), frame_of[v.key]) for v in views]),
                       view=np.concatenate([np.full(len(v.ids), i) for i, v in enumerate(views)]),
                       obj=np.concatenate([obj[v.ids] for v in views]), px=np.concatenate([v.corners for v in views]))
    K = np.stack([intrinsics[n].K for n in names])
    dist = np.stack([intrinsics[n].dist for n in names])
    bundle = solve_rig(obs, K, dist, cam_poses, frame_poses, config.intrinsics, config.bundle, names)
    T_world = _world_transform(config.world, frame_keys, bundle.frame_poses)
    bundle.cam_poses = bundle.cam_poses @ T_world
    bundle.frame_poses = np.linalg.inv(T_world) @ bundle.frame_poses
    cameras = tuple(Camera(n, detections.image_sizes[n], bundle.K[c], bundle.dist[c], bundle.cam_poses[c, :3, :3],
                           bundle.cam_poses[c, :3, 3]) for c, n in enumerate(names))
    rejected = [{"camera": views[v].camera, "image": views[v].label, "rms_px": round(e, 4)}
                for v, e in sorted(bundle.rejected.items())]
    calibration = Calibration(board.units, cameras, round(bundle.rms_px, 4),
                              {"board": board.to_dict(), "world": config.world, "rejected_views": rejected})
    report = _build_report(detections, intrinsics, bundle, views, config)
    return CalibrationResult(calibration, detections, intrinsics, bundle, frame_keys, report)


def _build_report(detections: Detections, intrinsics: dict[str, Intrinsics], bundle: BundleResult,
                  views: list, config: CalibrateConfig) -> dict[str, Any]:
    names = detections.cameras
    rms = view_rms(bundle.obs, bundle.residuals)
    index = {id(v): i for i, v in enumerate(views)}
    rows = []
    for v in detections.views:
        i = index.get(id(v))
        if i is None:
            status, err = "no board found", None
        elif i in bundle.rejected:
            status, err = "rejected (RMS over limit)", bundle.rejected[i]
        else:
            status, err = "used", rms[i]
        rows.append({"camera": v.camera, "key": v.key, "image": v.label, "points": int(len(v.ids)),
                     "rms_px": None if err is None else round(err, 4), "status": status})
    cameras = {}
    for c, n in enumerate(names):
        sel = bundle.obs.cam == c
        cameras[n] = {"views_found": len(detections.found(n)),
                      "views_used": sum(r["status"] == "used" for r in rows if r["camera"] == n),
                      "views_rejected": sum(r["status"].startswith("rejected") for r in rows if r["camera"] == n),
                      "intrinsics_rms_px": round(intrinsics[n].rms_px, 4),
                      "rms_px": round(float(np.sqrt(np.mean(np.sum(bundle.residuals[sel] ** 2, axis=1)))), 4),
                      "K": bundle.K[c].tolist(), "dist": bundle.dist[c].tolist(),
                      "image_size": list(detections.image_sizes[n])}
    return {"rms_px": round(bundle.rms_px, 4), "points_used": int(len(bundle.obs.cam)), "cameras": cameras,
            "rejected": [r for r in rows if r["status"].startswith("rejected")], "views": rows,
            "board": detections.board.to_dict(), "config": config_to_dict(config)}


def _write_outputs(result: CalibrationResult, staging: Path) -> None:
    names = result.detections.cameras
    save_calibration(result.calibration, staging / "calibration.json")
    write_report_json(result.report, staging / "report.json")
    by_camera: dict[str, list[float]] = {}
    for row in result.report["views"]:
        if row["rms_px"] is not None:
            by_camera.setdefault(row["camera"], []).append(row["rms_px"])
    plot_residuals(result.bundle.residuals, result.bundle.obs.cam, names, by_camera, staging / "residuals.png")
    plot_rig(result.calibration, result.detections.board, result.bundle.frame_poses, staging / "rig.png")


def calibrate(sources: list[str] | list[CameraSource], board: Board | str, config: CalibrateConfig | None = None,
              out_dir: str | Path | None = None, names: list[str] | None = None) -> CalibrationResult:
    """Calibrate a rig from board images: ``sources`` are folders, glob patterns or videos (one a camera).

    ``board`` is a Board, a preset name or a board YAML. With ``out_dir``, writes calibration.json
    (docs/formats.md §1), report.json, residuals.png, rig.png, overlays/, config.yaml and run.json there, all
    or nothing.
    """
    config = config or CalibrateConfig()
    board = board if isinstance(board, Board) else load_board(board)
    if sources and isinstance(sources[0], CameraSource):
        cams = list(sources)
    else:
        cams = open_sources([str(s) for s in sources], names, config.sources.pairing, config.sources.video_step,
                            config.sources.max_video_frames)
    if out_dir is None:
        result = solve_detections(detect_sources(cams, board, config.detect.subpix_window, None,
                                                 config.detect.overlays), config)
    else:
        with publishing(out_dir, "calibrate", config) as run:
            detections = detect_sources(cams, board, config.detect.subpix_window, run.staging / "overlays",
                                        config.detect.overlays)
            result = solve_detections(detections, config)
            _write_outputs(result, run.staging)
        result.out_dir = Path(out_dir)
    log.info("calibration done: joint RMS %.3f px\n%s", result.bundle.rms_px, format_table(result.report))
    return result
