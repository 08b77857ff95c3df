"""Write everything a fit produces: the delivery files, the JSON report, and the review (plots, report.html)."""

import json
import logging
from pathlib import Path

from matplotlib.figure import Figure

from facecap.animation import Animation
from facecap.export.export import export_animation
from facecap.export.timecode import TimecodeMode, take_timecode
from facecap.fit.config import FitConfig
from facecap.fit.pipeline import tracked_rig
from facecap.fit.report_page import write_report_page
from facecap.fit.result import FitResult, write_fit_report
from facecap.fit.review import FrameErrors, plot_fit_errors
from facecap.rig.model import Rig

__all__ = ["write_fit_outputs", "write_review", "plot_loss_curves", "performer_rig"]

log = logging.getLogger(__name__)


def plot_loss_curves(history: dict[str, list[float]], path: Path) -> None:
    """One curve per stage (summed over batches), log scale (symmetric log where an energy is not positive:
    the identity prior's information form, 0.5 x^T H x - eta^T x, can take the total below zero)."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    for name, losses in history.items():
        ax.plot(losses, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (sum over batches)")
    positive = all(x > 0 for losses in history.values() for x in losses)
    ax.set_yscale("log" if positive else "symlog")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def performer_rig(rig: Rig, config: FitConfig, units: str) -> Rig:
    """The animation rig in ``units`` with the identity modes the fit's identity coefficients refer to: its own,
    or the smooth neutral correction the fit adds to a rig without them (:mod:`facecap.fit.neutral`)."""
    return tracked_rig(rig, units, config)[0]


def write_review(report: dict, anim: Animation, out_dir: Path, qa_video: Path | None = None,
                 timecode_mode: TimecodeMode = "auto") -> dict[str, Path]:
    """errors.png and report.html from report.json's data, with the plots already in ``out_dir``."""
    errors = FrameErrors.from_report(report)
    paths = {"errors": plot_fit_errors(errors, out_dir / "errors.png")}
    images = {"Errors per frame": paths["errors"]}
    for title, name in (("Blendshape weights", "weights.png"), ("Optimisation", "losses.png")):
        if (out_dir / name).is_file():
            images[title] = out_dir / name
    clock = take_timecode(anim.fps, anim.start_timecode, timecode_mode)
    paths["html"] = write_report_page(errors, anim, clock, out_dir / "report.html", images, qa_video,
                                      report.get("seconds"))
    return paths


def write_fit_outputs(result: FitResult, rig: Rig, config: FitConfig, out_dir: str | Path) -> dict[str, Path]:
    """Delivery files (``config.export``) against the animation ``rig``, with the fitted identity; report.json,
    losses.png, errors.png and report.html. Returns the paths."""
    out_dir = Path(out_dir)
    anim = result.animation
    paths = export_animation(anim, out_dir, rig=performer_rig(rig, config, anim.units), config=config.export,
                             identity=result.identity)
    paths["report"] = out_dir / "report.json"
    write_fit_report(result, config, paths["report"])
    if result.loss_history:
        paths["losses"] = out_dir / "losses.png"
        plot_loss_curves(result.loss_history, paths["losses"])
    report = json.loads(paths["report"].read_text())
    paths.update(write_review(report, anim, out_dir, result.qa_video, config.export.timecode))
    return paths
