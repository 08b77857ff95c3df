"""The network: a convolutional encoder per view, per-view head pose, and weights pooled over the views.

Each view's crop goes through the same encoder (torch.nn's Conv2d, BatchNorm2d and ReLU in residual
stages, each halving the resolution) to a feature vector. From it, each view predicts the head's pose in
its own crop camera (a 6D rotation and the head reference point's place in the crop and depth code,
:mod:`facecap.learn.targets`), and its guess of the weights and identity with a confidence per entry. The
views' guesses are pooled by a softmax of the confidences over the views present, so a shape is read
from the views that see it best (a left smile from the cameras on the left), and any number of views
works. torchvision and timm would give the same blocks but do not install beside facecap's torch build
(their wheels pin other torch versions), so the stages are assembled from torch.nn here.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from facecap.errors import ShapeError
from facecap.learn.config import ModelConfig

__all__ = ["InitNet", "NetOutput"]

POSE_CODE = 9        # 6D rotation + (u, v, depth) of the reference point in the crop


class _Residual(nn.Module):
    """Two 3x3 convolutions with a shortcut; the first halves the resolution (a ResNet basic block)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, 2, 1, bias=False), nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False), nn.BatchNorm2d(channels_out))
        self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, 2, bias=False),
                                      nn.BatchNorm2d(channels_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@dataclass
class NetOutput:
    """What the network says about B scenes of V views.

    Attributes:
        rotation6d: [B, V, 6] head-to-crop rotation of each view (first two columns, unnormalised).
        position: [B, V, 3] (u, v, depth code) of the head's reference point in each view's crop.
        weights: [B, K] pooled weights (not clamped). identity: [B, I] pooled identity coefficients.
        view_weights: [B, V, K] each view's own guess of the weights.
    """

    rotation6d: torch.Tensor
    position: torch.Tensor
    weights: torch.Tensor
    identity: torch.Tensor
    view_weights: torch.Tensor


class InitNet(nn.Module):
    """Crops [B, V, 3, S, S] (colour in [0, 1]) and a view mask [B, V] in; :class:`NetOutput` out."""

    def __init__(self, config: ModelConfig, num_shapes: int, num_identities: int) -> None:
        super().__init__()
        w = config.widths
        self.num_shapes, self.num_identities = num_shapes, num_identities
        stages = [nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))]
        stages += [_Residual(a, b) for a, b in zip(w[:-1], w[1:])]
        side = config.crop_size // 2 ** len(w)
        self.encoder = nn.Sequential(*stages, nn.Flatten(), nn.Linear(w[-1] * side * side, config.features),
                                     nn.ReLU(inplace=True))
        outputs = num_shapes + num_identities
        self.pose = nn.Linear(config.features, POSE_CODE)
        self.guess = nn.Linear(config.features, outputs)
        self.confidence = nn.Linear(config.features, outputs)
        # Start with the face turned to the crop camera (head +z to camera -z, head +y up to camera -y) and its
        # reference point at the crop's centre: the heads begin where most answers lie.
        with torch.no_grad():
            self.pose.weight.mul_(0.1)
            self.pose.bias.copy_(torch.tensor([1.0, 0, 0, 0, -1.0, 0, 0, 0, 0]))

    def fuse_batchnorm(self) -> "InitNet":
        """Fold each BatchNorm into the convolution before it (the same answers in eval mode, in less time):
        for inference only, as the batch statistics are gone. Returns self, in eval mode."""
        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Sequential):
                for i in range(len(module) - 1):
                    conv, norm = module[i], module[i + 1]
                    if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                        module[i], module[i + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
        return self

    def forward(self, crops: torch.Tensor, mask: torch.Tensor) -> NetOutput:
        if crops.dim() != 5 or crops.shape[2] != 3:
            raise ShapeError(f"crops must be [B, V, 3, S, S], got {list(crops.shape)}")
        if mask.shape != crops.shape[:2]:
            raise ShapeError(f"mask must be [B, V] = {list(crops.shape[:2])}, got {list(mask.shape)}")
        B, V = crops.shape[:2]
        present = mask.reshape(-1)
        # Only the views present go through the encoder, so that absent ones never enter BatchNorm's statistics.
        features = crops.new_zeros(B * V, self.pose.in_features)
        if present.any():
            seen = self.encoder(crops.flatten(0, 1)[present])
            features = features.index_copy(0, torch.nonzero(present).squeeze(1), seen)
        features = features.unflatten(0, (B, V))
        pose = self.pose(features)
        guess, confidence = self.guess(features), self.confidence(features)
        confidence = confidence.masked_fill(~mask[..., None], float("-inf"))
        pooled = (torch.softmax(confidence, dim=1).nan_to_num(0.0) * guess).sum(1)
        K = self.num_shapes
        return NetOutput(rotation6d=pose[..., :6], position=pose[..., 6:], weights=pooled[:, :K],
                         identity=pooled[:, K:], view_weights=guess[..., :K])
