"""Settings of ``facecap train-init`` and ``facecap preview``: dataclasses, defaults mirrored in configs/."""

from dataclasses import dataclass, fields
from typing import Literal

from facecap.config import field, require_non_negative
from facecap.errors import ConfigError
from facecap.export.config import ExportConfig
from facecap.fit.config import LandmarkConfig
from facecap.synth.take import LightingConfig

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "TrainInitConfig", "PreviewConfig"]


@dataclass
class DataConfig:
    """The rendered training scenes: one random expression, identity, albedo and lighting seen by several cameras."""

    samples: int = field(6000, "training scenes rendered (once; cached in the work folder)")
    validation: int = field(256, "scenes held out for the validation curve")
    views: int = field(4, "cameras per scene")
    seed: int = field(0, "seed of every random choice of the scenes")
    chunk: int = field(64, "scenes per cache file (generation resumes from the last whole file)", expert=True)
    supersample: int = field(2, "render at this many times the canvas resolution and average down", expert=True)
    canvas_factor: float = field(1.2, "the rendered canvas spans this many times the crop, so that training can "
                                      "shift and scale the crop inside it", expert=True)
    canvas_size: int = field(154, "canvas pixels: at least the crop's size times canvas_factor (training resamples "
                                  "the canvas to the crop)", expert=True)
    yaw_deg: float = field(70.0, "largest angle of a camera from the face's front, left or right", expert=True)
    pitch_deg: float = field(30.0, "largest angle of a camera above or below the face's front", expert=True)
    roll_deg: float = field(10.0, "standard deviation of the head's roll seen by each camera", expert=True)
    arc_deg: tuple[float, float] = field((30.0, 120.0), "range of the span of a scene's cameras around the face",
                                         expert=True)
    distance_mm: tuple[float, float] = field((450.0, 1600.0), "range of camera distances from the face", expert=True)
    box_jitter: float = field(0.03, "the crop's centre moves by up to this fraction of the box, and its size by "
                                    "up to twice it (a detector's box is not the rig landmarks')", expert=True)
    identity_sigma: float = field(1.2, "largest standard deviation of the identity coefficients (σ = 1 modes)",
                                  expert=True)
    actions: float = field(2.5, "mean number of expression actions per scene (a shape, often with its mirror)",
                           expert=True)
    neutral_fraction: float = field(0.08, "fraction of scenes with a neutral expression", expert=True)
    lighting: LightingConfig = field(LightingConfig(mode="sh", ambient=(0.15, 0.5), key=(0.25, 0.9), fill=(0.0, 0.3),
                                                    key_spread_deg=70.0, sh_noise=0.01),
                                     "random world-fixed lighting of each scene, relative to its cameras", expert=True)

    def __post_init__(self) -> None:
        require_non_negative(self, ["seed", "yaw_deg", "pitch_deg", "roll_deg", "box_jitter",
                                    "identity_sigma", "actions", "neutral_fraction"])
        if min(self.samples, self.validation, self.views, self.chunk, self.supersample) < 1:
            raise ConfigError("samples, validation, views, chunk and supersample must be >= 1")
        if self.canvas_size < 16:
            raise ConfigError(f"canvas_size must be >= 16, got {self.canvas_size}")
        if self.canvas_factor < 1:
            raise ConfigError(f"canvas_factor must be >= 1, got {self.canvas_factor}")
        for name in ("arc_deg", "distance_mm"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ConfigError(f"{name} must be a range [low, high] with 0 <= low <= high, got {[low, high]}")


@dataclass
class ModelConfig:
    """The network: a small convolutional encoder per view, then heads pooled over the views."""

    crop_size: int = field(96, "crop width and height in pixels")
    margin: float = field(1.3, "the crop spans this many times the landmarks' box", expert=True)
    widths: list[int] = field([16, 32, 64, 128, 256], "channels of the stem and of each stride-2 stage", expert=True)
    features: int = field(256, "length of each view's feature vector", expert=True)

    def __post_init__(self) -> None:
        if self.crop_size < 16 or not self.widths or min(self.widths) < 1 or self.features < 1:
            raise ConfigError("crop_size must be >= 16, widths non-empty and positive, features >= 1")
        if self.crop_size % 2 ** len(self.widths):
            raise ConfigError(f"crop_size {self.crop_size} must be a multiple of 2^{len(self.widths)} "
                              f"({len(self.widths)} stride-2 layers)")
        if self.margin < 1:
            raise ConfigError(f"margin must be >= 1, got {self.margin}")


@dataclass
class TrainConfig:
    """Optimisation and the augmentations drawn afresh for every batch."""

    epochs: int = field(30, "passes over the rendered scenes")
    batch: int = field(32, "scenes per step")
    learning_rate: float = field(2e-3, "AdamW's peak learning rate (one-cycle schedule)")
    weight_decay: float = field(1e-4, "AdamW's weight decay", expert=True)
    device: str = field("auto", "torch device: auto (cuda when available), cpu, cuda, ...")
    threads: int = field(0, "torch CPU threads (0: torch's default)")
    shift: float = field(0.06, "the crop's centre moves by up to this fraction of its width", expert=True)
    scale: float = field(0.08, "the crop's size changes by up to this fraction", expert=True)
    min_views: int = field(1, "each scene keeps a random number of its views, at least this many", expert=True)
    weight_loss: float = field(10.0, "weight of the weights' loss (L1 near zero, quadratic for large errors; mean "
                                     "over shapes)", expert=True)
    identity_loss: float = field(0.3, "weight of the identity coefficients' loss (as the weights'; mean over modes)",
                                 expert=True)
    pose_loss: float = field(1.0, "weight of each view's rotation (chordal) and position (crop units) losses",
                             expert=True)

    def __post_init__(self) -> None:
        require_non_negative(self, [f.name for f in fields(self) if f.name != "device"])
        if self.epochs < 1 or self.batch < 1 or self.min_views < 1:
            raise ConfigError("epochs, batch and min_views must be >= 1")


@dataclass
class TrainInitConfig:
    """Everything ``facecap train-init`` needs besides the rig."""

    data: DataConfig = field(DataConfig(), "training scenes")
    model: ModelConfig = field(ModelConfig(), "network")
    train: TrainConfig = field(TrainConfig(), "training")

    def __post_init__(self) -> None:
        needed = self.model.crop_size * self.data.canvas_factor
        if self.data.canvas_size < round(needed):
            raise ConfigError(f"data.canvas_size {self.data.canvas_size} is too small for crops of "
                              f"{self.model.crop_size} px: it needs crop_size x canvas_factor = {needed:.0f}")


@dataclass
class PreviewConfig:
    """Everything ``facecap preview`` needs besides the take and the model."""

    landmarks: LandmarkConfig = field(LandmarkConfig(), "where the landmarks for the crops come from")
    boxes: Literal["track", "landmarks"] = field(
        "landmarks", "'landmarks': every frame's crops come from its own landmarks; 'track': only every "
                     "anchor_frames-th frame's do, the others' from the head the network found in the frame before "
                     "(the detector runs on those frames alone; the boxes drift with the network's position error)")
    anchor_frames: int = field(10, "with boxes=track, the frames whose crops come from their landmarks")
    batch_frames: int = field(8, "frames per network call with boxes=landmarks")
    export: ExportConfig = field(ExportConfig(), "delivery files (the keys of facecap export)")
    device: str = field("cpu", "torch device: auto (cuda when available), cpu, cuda, ...")
    threads: int = field(0, "torch CPU threads (0: torch's default)")

    def __post_init__(self) -> None:
        if self.batch_frames < 1 or self.anchor_frames < 1:
            raise ConfigError(f"batch_frames and anchor_frames must be >= 1, got {self.batch_frames}, "
                              f"{self.anchor_frames}")
        require_non_negative(self, ["threads"])
