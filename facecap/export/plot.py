"""Weight-curve plots for QA: which shapes fire when."""

import logging
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from facecap.animation import Animation

__all__ = ["plot_weight_curves", "ACTIVE_THRESHOLD"]

log = logging.getLogger(__name__)

ACTIVE_THRESHOLD = 0.02  # a shape whose weight never exceeds this is left out of the plot
_COLOURS = colormaps["tab10"].colors
_STYLES = ("-", "--", ":", "-.")
_MAX_LEGEND_ROWS = 26


def plot_weight_curves(anim: Animation, path_png: str | Path, threshold: float = ACTIVE_THRESHOLD,
                       dpi: int = 120) -> Path:
    """Plot the weights of active shapes (max weight > ``threshold``) against time, legend on the right.

    Colours cycle through tab10 and line styles change every ten shapes, so up to 40 curves stay
    distinguishable. An animation with no active shape gives a plot saying so.
    """
    path = Path(path_png)
    active = np.flatnonzero(anim.weights.max(axis=0, initial=0.0) > threshold)
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax = fig.subplots()
    times = anim.times
    for n, k in enumerate(active):
        ax.plot(times, anim.weights[:, k], color=_COLOURS[n % len(_COLOURS)],
                linestyle=_STYLES[(n // len(_COLOURS)) % len(_STYLES)], linewidth=1.4, label=anim.shape_names[k])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("weight")
    ax.set_ylim(-0.02, max(1.02, float(anim.weights.max(initial=0.0)) + 0.02))
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Blendshape weights: {len(active)} of {anim.num_shapes} shapes above {threshold:g}, "
                 f"{anim.num_frames} frames at {anim.fps:g} fps")
    if len(active):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False,
                  ncol=1 + (len(active) - 1) // _MAX_LEGEND_ROWS)
    else:
        ax.text(0.5, 0.5, "no active shapes", transform=ax.transAxes, ha="center", va="center")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    log.info("wrote %s (%d active shapes)", path, len(active))
    return path
