"""Settings of ``facecap calibrate`` (one dataclass a stage; defaults mirrored in configs/calibrate.yaml)."""

from dataclasses import dataclass
from typing import Literal

from facecap.config import field

__all__ = ["CalibrateConfig", "SourcesConfig", "DetectConfig", "IntrinsicsConfig", "BundleConfig"]


@dataclass
class SourcesConfig:
    pairing: Literal["auto", "name", "order"] = field(
        "auto", "how folders pair images across cameras: by file name, by order, or auto (names if shared)")
    video_step: int = field(10, "use every n-th frame of a video (neighbouring frames add little)")
    max_video_frames: int = field(200, "at most this many sampled frames per video")


@dataclass
class DetectConfig:
    subpix_window: int | None = field(
        None, "cornerSubPix half window in px; null = auto (30% of the view's corner spacing, at most 11); "
              "11 reproduces OpenCV's calibration samples")
    overlays: int = field(3, "detection overlays (PNG) written per camera; -1 writes all")


@dataclass
class IntrinsicsConfig:
    distortion: Literal["k5", "rational8"] = field(
        "k5", "lens model: k5 = OpenCV's 5 coefficients (k1 k2 p1 p2 k3), rational8 adds k4 k5 k6 (wide angle)")
    fix_aspect: bool = field(False, "keep fx / fy = 1 (CALIB_FIX_ASPECT_RATIO, as OpenCV's sample with -a 1)")
    zero_tangential: bool = field(False, "force p1 = p2 = 0 (CALIB_ZERO_TANGENT_DIST)")
    min_views: int = field(3, "fewest views with the board a camera needs")


@dataclass
class BundleConfig:
    refine_intrinsics: bool = field(True, "refine K and dist jointly with all poses (else keep per-camera ones)")
    loss: Literal["linear", "huber", "soft_l1", "cauchy"] = field(
        "huber", "robust loss of scipy least_squares on pixel residuals")
    loss_scale_px: float = field(1.0, "residual (px) where the robust loss starts to down-weight")
    reject_factor: float = field(3.0, "reject a view whose RMS exceeds reject_factor x the median view RMS ...")
    reject_min_px: float = field(0.5, "... and also exceeds this many pixels")
    max_rounds: int = field(3, "solve / reject rounds at most")


@dataclass
class CalibrateConfig:
    board: str = field("opencv_9x6", "board preset name (calibration/boards/*.yaml) or a board YAML file")
    world: str = field("first_camera", "world frame: 'first_camera', or 'board:KEY' = the board in image KEY")
    sources: SourcesConfig = field(SourcesConfig(), "image sources")
    detect: DetectConfig = field(DetectConfig(), "board detection")
    intrinsics: IntrinsicsConfig = field(IntrinsicsConfig(), "per-camera intrinsics")
    bundle: BundleConfig = field(BundleConfig(), "joint bundle adjustment and view rejection")
