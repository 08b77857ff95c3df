"""Settings of ``facecap fit``: one dataclass tree, defaults mirrored in configs/fit.yaml."""

from dataclasses import dataclass
from typing import Literal

from facecap.config import field
from facecap.solve.fit.init import InitConfig

__all__ = ["FitConfig", "LandmarkConfig", "LossWeights", "ScheduleConfig"]


@dataclass
class LandmarkConfig:
    """Where 2D landmarks come from."""

    model_path: str | None = field(None, "MediaPipe face_landmarker.task file (needed unless a landmarks file is given)")
    landmarks_file: str | None = field(None, "a facecap-landmarks JSON to use instead of the detector")
    cache_dir: str | None = field(None, "where detections are cached (default: <out>/landmarks_cache)")


@dataclass
class LossWeights:
    """Weights of the loss terms (each term is a mean, so weights compare across takes)."""

    photometric: float = field(1.0, "robust colour difference, masked to the face")
    photometric_eps: float = field(0.02, "Charbonnier scale of the colour difference (fraction of full range)")
    landmark: float = field(0.002, "robust landmark reprojection error (per px)")
    landmark_eps_px: float = field(2.0, "Charbonnier scale of landmark errors in pixels")
    l1: float = field(0.002, "l1 sparsity of the weights")
    smooth_weights: float = field(0.05, "squared second differences of the weights over time")
    smooth_pose: float = field(0.02, "squared second differences of head rotation (6D) and translation (per mm)")
    mesh_prior: float = field(0.0, "pull towards the landmark/CD initial mesh (per mm², face region); 0 disables")
    identity_prior: float = field(1e-4, "keeps identity coefficients near 0 (σ = 1 modes)")
    neutral_smooth: float = field(10.0, "smoothness of the per-vertex neutral correction (rigs without identity modes)")


@dataclass
class ScheduleConfig:
    """Coarse-to-fine optimisation schedule."""

    scales: list[float] = field([0.25, 0.5], "image scales of the photometric stages, coarse to fine")
    iterations: list[int] = field([30, 30], "Adam iterations per stage (one entry per scale)")
    final_iterations: int = field(2, "epochs of the final whole-sequence pass with the temporal terms")
    lr_weights: float = field(0.01, "Adam step for the weights")
    lr_rotation: float = field(0.002, "Adam step for the 6D rotation")
    lr_translation: float = field(0.2, "Adam step for the translation (calibration units)")
    lr_appearance: float = field(0.01, "Adam step for albedo, lighting and camera gains")
    lr_identity: float = field(0.01, "Adam step for the identity coefficients")


@dataclass
class FitConfig:
    """Everything ``facecap fit`` needs besides its inputs."""

    device: str = field("auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, ...")
    backend: Literal["auto", "torch", "nvdiffrast"] = field("auto", "rasteriser backend")
    batch_frames: int = field(8, "frames optimised together in the per-batch stage")
    texture_size: int = field(256, "albedo texture resolution (square)")
    photometric: bool = field(True, "run the photometric (analysis-by-synthesis) stages after the landmark init")
    qa_video: bool = field(True, "write a QA video (reference, render, overlay per camera)")
    landmarks: LandmarkConfig = field(LandmarkConfig(), "landmark source")
    init: InitConfig = field(InitConfig(), "landmark initialisation")
    loss: LossWeights = field(LossWeights(), "loss weights")
    schedule: ScheduleConfig = field(ScheduleConfig(), "optimisation schedule")
