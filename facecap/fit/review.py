"""A fit's per-frame errors as a supervisor reviews them: which frames to look at, and errors.png.

The errors come from report.json (:func:`facecap.fit.pipeline.write_fit_report`): per frame the
landmark reprojection error in pixels, the photometric RMS in grey levels and whether the frame was
interpolated; per camera too where the report has them (``cameras``, and per frame
``landmark_error_px_per_camera`` and ``photometric_rms_per_camera``, lists in camera order with
null where a camera saw nothing).

A frame is *flagged* when it was interpolated (no landmarks in any view), or when one of its errors
is an outlier of the take: above the median by more than ``FLAG_MADS`` robust standard deviations
(1.4826 x the median absolute deviation) and by more than ``FLAG_RATIO`` times the median (so that
a take fitted uniformly well flags nothing for differences of a tenth of a pixel).
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["FrameErrors", "plot_fit_errors", "FLAG_MADS", "FLAG_RATIO"]

log = logging.getLogger(__name__)

FLAG_MADS = 4.0
FLAG_RATIO = 1.5
_MAD_TO_SIGMA = 1.4826            # MAD of a normal distribution times this is its standard deviation
_COLOURS = colormaps["tab10"].colors


def _column(frames: list[dict], key: str, cameras: int | None = None) -> np.ndarray | None:
    """A per-frame key as floats (None -> NaN): [T], or [T, C] for per-camera lists; None when absent (per-camera
    lists: absent or null in every frame)."""
    if not frames or key not in frames[0]:
        return None
    values = [frame.get(key) for frame in frames]
    if cameras is not None and all(v is None for v in values):
        return None
    if cameras is None:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array([[np.nan] * cameras if v is None else [np.nan if x is None else x for x in v] for v in values],
                    dtype=np.float64)


def _outliers(values: np.ndarray) -> np.ndarray:
    """[T] True where ``values`` is a high outlier (module docstring); NaN is never one."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(len(values), dtype=bool)
    median = np.median(values[finite])
    sigma = _MAD_TO_SIGMA * np.median(np.abs(values[finite] - median))
    with np.errstate(invalid="ignore"):
        return finite & (values > median + FLAG_MADS * sigma) & (values > FLAG_RATIO * median)


@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors of a fit.

    Attributes:
        frames: [T] int take frame numbers.
        landmark_px: [T] RMS landmark reprojection error, pixels.
        photometric_rms: [T] RMS colour error, grey levels (NaN without the photometric fit).
        interpolated: [T] bool: no landmarks in any view.
        camera_names: C names, or () when the report has no per-camera errors.
        landmark_px_per_camera: [T, C] or None.
        photometric_rms_per_camera: [T, C] or None.
    """

    frames: np.ndarray
    landmark_px: np.ndarray
    photometric_rms: np.ndarray
    interpolated: np.ndarray
    camera_names: tuple[str, ...] = ()
    landmark_px_per_camera: np.ndarray | None = None
    photometric_rms_per_camera: np.ndarray | None = None

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> "FrameErrors":
        """From report.json's parsed data."""
        frames = report["frames"]
        names = tuple(report.get("cameras") or ())
        C = len(names) or None
        per_camera = {key: _column(frames, key, C) if C else None
                      for key in ("landmark_error_px_per_camera", "photometric_rms_per_camera")}
        return cls(frames=np.array([f["frame"] for f in frames], dtype=np.int64),
                   landmark_px=_column(frames, "landmark_error_px"), photometric_rms=_column(frames, "photometric_rms"),
                   interpolated=np.array([bool(f.get("interpolated", False)) for f in frames]), camera_names=names,
                   landmark_px_per_camera=per_camera["landmark_error_px_per_camera"],
                   photometric_rms_per_camera=per_camera["photometric_rms_per_camera"])

    @property
    def has_photometric(self) -> bool:
        return bool(np.isfinite(self.photometric_rms).any())

    @property
    def score(self) -> np.ndarray:
        """[T] the error frames are ranked by: photometric RMS where the fit has it, else landmark pixels."""
        return self.photometric_rms if self.has_photometric else self.landmark_px

    def flagged(self) -> np.ndarray:
        """[T] bool: interpolated, or an outlier in landmark or photometric error (module docstring)."""
        flags = self.interpolated | _outliers(self.landmark_px) | _outliers(self.photometric_rms)
        for per_camera in (self.landmark_px_per_camera, self.photometric_rms_per_camera):
            if per_camera is not None:
                flags |= np.any([_outliers(column) for column in per_camera.T], axis=0)
        return flags

    def worst_and_median(self) -> tuple[int, int]:
        """Indices (into the take's frames) of the worst frame by :attr:`score` and of its median frame."""
        score = np.where(np.isfinite(self.score), self.score, -np.inf)
        order = np.argsort(score, kind="stable")
        finite = order[np.isfinite(score[order])]
        ranked = finite if len(finite) else order
        return int(ranked[-1]), int(ranked[len(ranked) // 2])


def _panel(ax: Any, frames: np.ndarray, total: np.ndarray, per_camera: np.ndarray | None, names: tuple[str, ...],
           flagged: np.ndarray, interpolated: np.ndarray, ylabel: str) -> None:
    if per_camera is not None:
        for c, name in enumerate(names):
            ax.plot(frames, per_camera[:, c], color=_COLOURS[c % len(_COLOURS)], linewidth=0.9, alpha=0.8, label=name)
    ax.plot(frames, total, color="black", linewidth=1.8, label="all cameras")
    for k, frame in enumerate(frames[interpolated]):
        ax.axvspan(frame - 0.5, frame + 0.5, color="0.8", zorder=0, label="interpolated" if k == 0 else None)
    marked = flagged & np.isfinite(total)
    if marked.any():
        ax.plot(frames[marked], total[marked], linestyle="none", marker="o", markersize=6, markerfacecolor="none",
                markeredgecolor="red", markeredgewidth=1.5, label="flagged")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)


def plot_fit_errors(errors: FrameErrors, path: str | Path, dpi: int = 110) -> Path:
    """errors.png: landmark pixels and photometric RMS per frame (per camera where known), flagged frames
    circled in red, interpolated frames shaded grey."""
    path = Path(path)
    flagged = errors.flagged()
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _panel(top, errors.frames, errors.landmark_px, errors.landmark_px_per_camera, errors.camera_names, flagged,
           errors.interpolated, "landmark error (px RMS)")
    if errors.has_photometric:
        _panel(bottom, errors.frames, errors.photometric_rms, errors.photometric_rms_per_camera, errors.camera_names,
               flagged, errors.interpolated, "photometric error (grey levels RMS)")
    else:
        bottom.text(0.5, 0.5, "no photometric fit", transform=bottom.transAxes, ha="center", va="center")
        bottom.set_yticks([])
    bottom.set_xlabel("frame")
    handles, labels = top.get_legend_handles_labels()
    top.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.suptitle(f"Fit errors: {len(errors.frames)} frames, {int(flagged.sum())} flagged "
                 f"({int(errors.interpolated.sum())} interpolated)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    log.info("wrote %s (%d frames flagged)", path, int(flagged.sum()))
    return path
