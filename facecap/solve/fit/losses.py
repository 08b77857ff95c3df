"""Loss terms of the analysis-by-synthesis fit; each returns a scalar tensor.

Robust terms use the Charbonnier penalty sqrt(r² + ε²) − ε (a smooth l1), which keeps the
quadratic basin near zero for precise convergence and grows linearly for outliers (occlusions,
specularities, detector blunders).
"""

import torch

from facecap.checks import check_shape

__all__ = ["charbonnier", "photometric_loss", "landmark_loss", "l1_sparsity", "second_difference_loss"]


def charbonnier(r: torch.Tensor, eps: float) -> torch.Tensor:
    """Elementwise sqrt(r² + eps²) − eps; eps is the scale below which the penalty is quadratic."""
    return torch.sqrt(r * r + eps * eps) - eps


def photometric_loss(rendered: torch.Tensor, observed: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean robust colour difference over masked pixels.

    Args:
        rendered, observed: [..., H, W, 3] colours in [0, 1].
        mask: [..., H, W] weights in [0, 1] (face coverage times validity).
        eps: Charbonnier scale in grey levels / 255.
    """
    check_shape(rendered, "* H W 3", "rendered")
    per_pixel = charbonnier(rendered - observed, eps).sum(-1)
    return (per_pixel * mask).sum() / mask.sum().clamp_min(1.0)


def landmark_loss(projected: torch.Tensor, detected: torch.Tensor, confidence: torch.Tensor, eps_px: float) -> torch.Tensor:
    """Confidence-weighted robust reprojection error in pixels.

    Args:
        projected, detected: [..., L, 2] pixel positions. confidence: [..., L] in [0, 1], 0 = missing.
    """
    err = torch.linalg.norm(projected - detected, dim=-1)
    return (charbonnier(err, eps_px) * confidence).sum() / confidence.sum().clamp_min(1.0)


def l1_sparsity(weights: torch.Tensor) -> torch.Tensor:
    """Mean of the (non-negative, boxed) weights: their l1 norm per entry."""
    return weights.abs().mean()


def second_difference_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference over time of [T, ...] (zero for fewer than 3 frames)."""
    if x.shape[0] < 3:
        return x.sum() * 0.0
    d2 = x[2:] - 2 * x[1:-1] + x[:-2]
    return (d2 * d2).mean()
