"""Write everything a fit produces: the exports, the JSON report and the loss curves."""

import logging
from pathlib import Path

from matplotlib.figure import Figure

from facecap.export.export import export_animation
from facecap.fit.config import FitConfig
from facecap.fit.result import FitResult, write_fit_report
from facecap.rig.model import Rig

__all__ = ["write_fit_outputs", "plot_loss_curves"]

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


def write_fit_outputs(result: FitResult, rig: Rig, config: FitConfig, out_dir: Path) -> dict[str, Path]:
    """Exports against the animation ``rig``, plus report.json and losses.png; returns the paths."""
    paths = export_animation(result.animation, out_dir, rig=rig.in_units(result.animation.units))
    paths["report"] = out_dir / "report.json"
    write_fit_report(result, config, paths["report"])
    if result.loss_history:
        paths["losses"] = out_dir / "losses.png"
        plot_loss_curves(result.loss_history, paths["losses"])
    return paths
