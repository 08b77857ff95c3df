"""Training batches from rendered scenes: crops cut anew from each canvas, with fresh backgrounds and camera looks.

Every draw moves and scales each view's crop inside its canvas (the box a detector or the tracker finds
is never exactly the rig landmarks'), composites the face over a random background (a gradient with soft
blotches), applies random camera gains, exposure and tone curves, blur and sensor noise, quantises to 8 bits, and keeps
a random subset of the views. The crop cameras change with the crops, and the targets with them.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facecap.learn.config import ModelConfig, TrainConfig
from facecap.learn.crops import CropCameras, resample_crops, rotation_onto_axis, source_pixels
from facecap.learn.dataset import GREY_LEVELS, SceneSet
from facecap.learn.geometry import encode_pose

__all__ = ["Batch", "make_batch"]

GAIN_SPREAD = 0.15          # per-channel camera gains in [1 - spread, 1 + spread]
EXPOSURE = (0.6, 1.4)       # overall brightness of a view
GAMMA = (0.8, 1.25)         # a camera's tone curve, per view
BLUR_SIGMA = (0.0, 1.2)     # crop pixels, one sigma per batch
NOISE_SIGMA = (0.0, 4.0)    # grey levels
BACKGROUND_TINT = 0.1       # standard deviation of a background colour's departure from grey
BACKGROUND_SHRINK = 4       # backgrounds are drawn at this fraction of the crop's size
BLUR_CHANCE = 0.5


@dataclass
class Batch:
    """B scenes of V views, ready for :class:`facecap.learn.model.InitNet` (lengths in mm).

    Attributes:
        crops: [B, V, 3, S, S] float32 colour in [0, 1]; mask: [B, V] bool views kept.
        cameras: the B*V crop cameras (float32, row b * V + v).
        rotation: [B, V, 3, 3] head-to-crop rotations; code: [B, V, 3] (u, v, depth) of the reference point.
        weights: [B, K]; identity: [B, I]; R: [B, 3, 3], t: [B, 3] head-to-world pose.
    """

    crops: torch.Tensor
    mask: torch.Tensor
    cameras: CropCameras
    rotation: torch.Tensor
    code: torch.Tensor
    weights: torch.Tensor
    identity: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor


def _uniform(generator: torch.Generator, low: float, high: float, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=generator)


def _backgrounds(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[n, 3, S, S] a gradient between two random greyish colours along a random direction, with soft blotches
    (drawn at a quarter of the size and enlarged: they are smooth)."""
    small = max(size // BACKGROUND_SHRINK, 4)
    ramp = torch.linspace(-1, 1, small)
    angle = _uniform(generator, 0, 2 * np.pi, n)
    along = torch.cos(angle)[:, None, None] * ramp[None, None, :] \
        + torch.sin(angle)[:, None, None] * ramp[None, :, None]
    low, high = (_uniform(generator, 0.02, 0.8, n, 1) + BACKGROUND_TINT * torch.randn(n, 3, generator=generator)
                 for _ in range(2))
    mix = (along[:, None] + 1) / 2
    image = low[..., None, None] * (1 - mix) + high[..., None, None] * mix
    blotches = F.interpolate(torch.randn(n, 1, 4, 4, generator=generator), size=(small, small), mode="bicubic",
                             align_corners=False)
    image = image * (1 + _uniform(generator, 0, 0.3, n, 1, 1, 1) * blotches)
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=True).clamp(0, 1)


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [N, 3, S, S] images: separable, reflect-padded, as sums of shifted images (on the CPU
    several times faster than a depthwise conv2d)."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=images.dtype) / sigma) ** 2)
    kernel = kernel / kernel.sum()
    H, W = images.shape[-2:]
    padded = F.pad(images, (radius, radius, 0, 0), mode="reflect")
    rows = sum(k * padded[..., i:i + W] for i, k in enumerate(kernel))
    padded = F.pad(rows, (0, 0, radius, radius), mode="reflect")
    return sum(k * padded[..., i:i + H, :] for i, k in enumerate(kernel))


def make_batch(scenes: SceneSet, indices: np.ndarray, model: ModelConfig, train: TrainConfig,
               canvas_factor: float, reference: torch.Tensor, scale: float, generator: torch.Generator) -> Batch:
    """The augmented batch of the scenes at ``indices``; every random choice comes from ``generator``."""
    canvas = torch.from_numpy(scenes.canvas(indices))                                   # [B, V, Sc, Sc, 4] uint8
    B, V, Sc = canvas.shape[:3]
    N, S = B * V, model.crop_size
    meta = scenes.scenes

    def rows(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a[indices], dtype=torch.float32)
    keep = torch.randint(min(train.min_views, V), V + 1, (B,), generator=generator)
    order = torch.argsort(torch.rand(B, V, generator=generator), dim=1)
    mask = torch.zeros(B, V, dtype=torch.bool).scatter_(1, order, torch.arange(V)[None] < keep[:, None])
    canvas_cams = CropCameras(R=rows(meta.canvas_R).flatten(0, 1), centre=rows(meta.canvas_centre).flatten(0, 1),
                              focal=rows(meta.canvas_focal).flatten(), size=Sc)
    nominal_focal = canvas_cams.focal * S * canvas_factor / Sc
    focal = nominal_focal * torch.exp(_uniform(generator, -train.scale, train.scale, N))
    shift = _uniform(generator, -train.shift, train.shift, N, 2) * (S / nominal_focal)[:, None]
    J = rotation_onto_axis(F.normalize(torch.cat([shift, torch.ones(N, 1)], -1), dim=-1))
    cameras = CropCameras(R=J @ canvas_cams.R, centre=canvas_cams.centre, focal=focal, size=S)
    R, t = rows(meta.R), rows(meta.t)
    rotation, code = encode_pose(cameras, R.repeat_interleave(V, 0), t.repeat_interleave(V, 0), reference, scale)
    # Only the views kept are cut and augmented.
    kept = torch.nonzero(mask.reshape(-1)).squeeze(1)
    n = len(kept)
    rgba = canvas.flatten(0, 1)[kept].permute(0, 3, 1, 2).float().div_(GREY_LEVELS)
    source = canvas_cams.select(kept)
    # A canvas much finer than the crop is first averaged down (a whole factor that divides it, which keeps the
    # principal point at the centre), so that bilinear taps do not alias.
    shrink = max((k for k in range(1, int(Sc / (S * canvas_factor)) + 1) if Sc % k == 0), default=1)
    if shrink > 1:
        rgba = F.avg_pool2d(rgba, shrink)
        source = CropCameras(source.R, source.centre, source.focal / shrink, Sc // shrink)
    rgba = resample_crops(rgba, source_pixels(cameras.select(kept), source.as_camera_tensors()))
    crops = rgba[:, :3] + (1 - rgba[:, 3:]) * _backgrounds(n, S, generator)
    gains = _uniform(generator, 1 - GAIN_SPREAD, 1 + GAIN_SPREAD, n, 3) * _uniform(generator, *EXPOSURE, n, 1)
    crops = (crops * gains[..., None, None]).clamp(0, 1) ** _uniform(generator, *GAMMA, n, 1, 1, 1)
    if torch.rand(1, generator=generator).item() < BLUR_CHANCE:
        crops = _blur(crops, float(_uniform(generator, *BLUR_SIGMA, 1).clamp_min(0.3)))
    crops = crops + torch.randn(crops.shape, generator=generator) * _uniform(generator, *NOISE_SIGMA, n, 1, 1, 1) \
        / GREY_LEVELS
    crops = (crops.clamp(0, 1) * GREY_LEVELS).round() / GREY_LEVELS
    crops = torch.zeros(N, 3, S, S).index_copy(0, kept, crops).unflatten(0, (B, V))
    return Batch(crops=crops, mask=mask, cameras=cameras, rotation=rotation.unflatten(0, (B, V)),
                 code=code.unflatten(0, (B, V)), weights=rows(meta.weights), identity=rows(meta.identity), R=R, t=t)
