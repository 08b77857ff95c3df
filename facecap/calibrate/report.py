"""What a calibration run tells its user: report.json, a printed table, residual and rig plots (PNG files)."""

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from facecap.calibrate.boards import Board
from facecap.camera.model import Calibration

__all__ = ["format_table", "write_report_json", "plot_residuals", "plot_rig"]

log = logging.getLogger(__name__)

FRUSTUM_DEPTH_FRACTION = 0.15  # drawn frustum depth, as a fraction of the rig's extent


def format_table(report: dict[str, Any]) -> str:
    """Per-camera and per-image RMS as plain text, rejected and missed images marked."""
    lines = [f"{'camera':<12}{'views':>6}{'rejected':>9}{'intr. RMS':>11}{'joint RMS':>11}  fx / fy / cx / cy"]
    for name, cam in report["cameras"].items():
        k = cam["K"]
        lines.append(f"{name:<12}{cam['views_used']:>6}{cam['views_rejected']:>9}{cam['intrinsics_rms_px']:>11.3f}"
                     f"{cam['rms_px']:>11.3f}  {k[0][0]:.1f} / {k[1][1]:.1f} / {k[0][2]:.1f} / {k[1][2]:.1f}")
    lines.append(f"joint RMS {report['rms_px']:.3f} px over {report['points_used']} points")
    lines.append("")
    lines.append(f"{'camera':<12}{'image':<28}{'points':>7}{'RMS px':>9}  status")
    for view in report["views"]:
        rms = "" if view["rms_px"] is None else f"{view['rms_px']:.3f}"
        label = Path(view["image"]).name
        lines.append(f"{view['camera']:<12}{label:<28}{view['points']:>7}{rms:>9}  {view['status']}")
    return "\n".join(lines)


def write_report_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=1))


def plot_residuals(residuals: np.ndarray, cams: np.ndarray, names: list[str], view_rms: dict[str, list[float]],
                   path: Path) -> None:
    """Scatter of reprojection residuals [M, 2] px per camera, and a histogram of view RMS per camera."""
    n = len(names)
    fig = Figure(figsize=(3.2 * n + 1, 6.4))
    axes = fig.subplots(2, n, squeeze=False)
    lim = max(1.0, float(np.percentile(np.abs(residuals), 99.5))) if len(residuals) else 1.0
    for c, name in enumerate(names):
        r = residuals[cams == c]
        ax = axes[0, c]
        ax.scatter(r[:, 0], r[:, 1], s=2, alpha=0.4)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=f"{name} residuals (px)")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        axes[1, c].hist(view_rms.get(name, []), bins=20)
        axes[1, c].set(title=f"{name} view RMS (px)", xlabel="px", ylabel="views")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_rig(calib: Calibration, board: Board, board_poses: np.ndarray, path: Path) -> None:
    """3D view of the cameras (frusta, names) and the board poses [F, 4, 4] T_world_board (NaN rows skipped)."""
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    centers = np.array([c.center for c in calib.cameras])
    obj = board.object_points()
    outline = obj[[0, board.cols - 1, -1, len(obj) - board.cols, 0]] if board.type != "charuco" else \
        obj[[0, board.cols - 2, -1, len(obj) - board.cols + 1, 0]]
    board_pts = [T[:3, :3] @ outline.T + T[:3, 3:] for T in board_poses if np.isfinite(T).all()]
    extent = np.ptp(np.vstack([centers] + [p.T for p in board_pts]), axis=0).max() if board_pts else 1.0
    depth = FRUSTUM_DEPTH_FRACTION * max(extent, 1e-9)
    for cam in calib.cameras:
        w, h = cam.image_size
        corners_px = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
        rays = (np.linalg.inv(cam.K) @ corners_px.T) * depth
        world = cam.R.T @ (rays - cam.t[:, None])
        c = cam.center
        for k in range(4):
            ax.plot(*np.stack([c, world[:, k]], axis=1), color="tab:blue", lw=0.8)
        ax.plot(*np.hstack([world, world[:, :1]]), color="tab:blue", lw=0.8)
        ax.text(*c, cam.name, fontsize=8)
    for pts in board_pts:
        ax.plot(*pts, color="tab:orange", lw=0.6, alpha=0.6)
    ax.set(xlabel=f"x ({calib.units})", ylabel=f"y ({calib.units})", zlabel=f"z ({calib.units})",
           title="camera rig (blue) and board poses (orange)")
    everything = np.vstack([centers] + [p.T for p in board_pts])
    lo, hi = everything.min(0), everything.max(0)
    mid, half = (lo + hi) / 2, max((hi - lo).max() / 2, 1e-9)
    ax.set(xlim=(mid[0] - half, mid[0] + half), ylim=(mid[1] - half, mid[1] + half),
           zlim=(mid[2] - half, mid[2] + half))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
