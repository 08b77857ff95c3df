"""Settings of ``facecap fit``: one dataclass tree, defaults mirrored in configs/fit.yaml."""

from dataclasses import dataclass, fields

import torch

from facecap.config import field, require_non_negative
from facecap.errors import ConfigError
from facecap.export.config import ExportConfig
from facecap.fit.init import InitConfig

__all__ = ["FitConfig", "LandmarkConfig", "LossWeights", "ScheduleConfig", "SAMPLERS"]

SAMPLERS = ("vertex", "raster")


@dataclass
class LandmarkConfig:
    """Where 2D landmarks come from."""

    model_path: str | None = field(None, "MediaPipe face_landmarker.task file (needed unless a landmarks file is "
                                         "given)")
    landmarks_file: str | None = field(None, "a facecap-landmarks JSON to use instead of the detector")
    cache_dir: str | None = field(None, "where detections are cached (default: "
                                        "<out>/.facecap/cache/landmarks_cache, kept across runs)")

    @property
    def detected(self) -> bool:
        """Landmarks come from the detector, whose points are not exactly the rig's landmark vertices."""
        return not self.landmarks_file


# The median face colour (in [0, 1]) that the photometric term's weight and scale are given for, a face of
# light skin in even studio light; a take's own face rescales them (facecap.fit.take_loss.scale_loss).
REFERENCE_BRIGHTNESS = 0.33


@dataclass
class LossWeights:
    """Weights of the loss terms. Data terms are means per frame, so weights compare across takes and rigs.
    Every key is expert tuning: the defaults are set on takes with ground truth (docs/decisions.md)."""

    photometric: float = field(1.0, "robust colour difference over the visible face samples (colours in [0, 1]), "
                                    f"for a face whose median colour is {REFERENCE_BRIGHTNESS}; the differences are "
                                    "measured relative to the take's face, so a darker face or exposure weighs the "
                                    "same")
    photometric_eps: float = field(0.03, "Charbonnier scale of the colour difference (fraction of full range) for "
                                         f"a face of median colour {REFERENCE_BRIGHTNESS}; scaled with the take's face")
    albedo_tie: float = field(3.0, "how strongly each frame's albedo is tied to the take's (in cameras' worth "
                                   "of evidence); 0 leaves only multi-view consistency")
    landmark: float = field(0.002, "robust reprojection error of a landmarks file's points (per px, mean over "
                                   "confident landmarks), taken to lie on the rig's landmark vertices")
    landmark_detected: float = field(0.0, "the same for detected (MediaPipe) landmarks. Their points sit mm from "
                                          "the rig's, by amounts that change with face, view and expression: "
                                          "less their offsets from the keyframes' fits, they initialise "
                                          "every frame, which photometry alone then fits")
    landmark_eps_px: float = field(2.0, "Charbonnier scale of landmark errors in pixels")
    silhouette: float = field(0.002, "robust distance of the mesh's outline to the head's outline against a plain "
                                     "background (per px², mean over outline points); views whose background is "
                                     "not plain are left out; 0 disables")
    silhouette_eps_px: float = field(1.0, "Cauchy scale of outline distances in full-resolution pixels, widened by "
                                          "1 / image scale at coarse scales; far-off points (dark hair lost to a dark "
                                          "backdrop) lose their pull")
    l1: float = field(0.0033, "sparsity: the prior's slope at 0 per unit of a frame's mean weight, for a face "
                              "imaged at 1 px/mm; scaled by the take's pixels per millimetre at the head, since "
                              "a shape's pull on the photometric term comes mostly from edges (lids, lips), "
                              "whose colour change per millimetre moved grows with it. Raise it when shapes "
                              "fire that the performer did not make, lower it when small motions are lost")
    l1_scale: float = field(0.3, "the sparsity prior is l1 · s · log(1 + w / s) with this s (a log-sum penalty): "
                                 "its slope at 0 is l1's, so it zeroes as many weights, but it halves by w = s, so "
                                 "active weights are shrunk less (0: plain l1; small values let one shape stand "
                                 "in for another)")
    l1_relaxed_above: float = field(0.05, "a relaxed lasso (Meinshausen 2007): weights at or above this when a "
                                          "batch's fit begins keep no sparsity prior for it, so the prior picks "
                                          "which weights are on and the data alone sets how much (a prior's pull "
                                          "shrinks the shapes the data barely resolves); 0: off")
    relaxed_max_cosine: float = field(0.9, "...unless a shape that is off could stand in for it: an on weight stays "
                                           "under the prior where its column in the frame's data normal matrix has a "
                                           "cosine above this with an off shape's (a blink and a downward gaze close "
                                           "the same lids)")
    smooth_weights: float = field(1e-3, "squared second differences of the weights over time (mean over shapes)")
    smooth_pose: float = field(1e-4, "squared second differences of head translation and of rotation times the "
                                     "head's radius (calibration units)")
    identity_prior: float = field(1e-4, "keeps identity coefficients near 0 (σ = 1 modes)")
    mesh_prior: float = field(0.0, "pull of the sampled vertices towards the landmark/coordinate-descent solution "
                                   "(per calibration unit², mean over samples); 0 disables")

    def __post_init__(self) -> None:
        require_non_negative(self, [f.name for f in fields(self)])
        for name in ("photometric_eps", "landmark_eps_px", "silhouette_eps_px"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.relaxed_max_cosine <= 1:
            raise ConfigError(f"relaxed_max_cosine must lie in (0, 1], got {self.relaxed_max_cosine}")


@dataclass
class ScheduleConfig:
    """Coarse-to-fine Gauss-Newton schedule: a keyframe stage, then sweeps over the take."""

    keyframes: int = field(8, "frames spread over the take that first settle identity, appearance and the "
                              "landmark init's worst errors (0 skips the stage)")
    keyframe_scales: list[float] = field([0.125, 0.25, 0.5, 1.0], "image scales of the keyframe stage; drop the "
                                         "coarsest for small images (a head a few pixels wide there)", expert=True)
    keyframe_iterations: list[int] = field([40, 40, 25, 10], "Gauss-Newton iterations per keyframe scale (fitted "
                                           "without detected landmarks, the photometric valley is long)",
                                           expert=True)
    scales: list[float] = field([0.25, 0.5, 1.0], "image scales of the sweeps, coarse to fine", expert=True)
    iterations: list[int] = field([6, 4, 8], "Gauss-Newton iterations per sweep scale; the full scale needs "
                                            "about 8 to converge", expert=True)
    passes: int = field(2, "sweeps over the take; later sweeps see both neighbours of every batch fitted, and "
                           "the albedo and lighting of the whole take (1 for a quick look, 0: the keyframes only)")
    damping: float = field(0.1, "initial Levenberg-Marquardt damping (relative to the normal matrix's diagonal)",
                           expert=True)

    def __post_init__(self) -> None:
        require_non_negative(self, ["keyframes", "passes", "damping"])
        for scales, iterations in (("keyframe_scales", "keyframe_iterations"), ("scales", "iterations")):
            s, n = getattr(self, scales), getattr(self, iterations)
            if len(s) != len(n):
                raise ConfigError(f"{scales} and {iterations} must have the same length, got {len(s)} and {len(n)}")
            if any(not 0 < x <= 1 for x in s):
                raise ConfigError(f"{scales} must lie in (0, 1], got {s}")
            if any(k < 0 for k in n):
                raise ConfigError(f"{iterations} must be >= 0, got {n}")

    @property
    def keyframe_stages(self) -> list[tuple[float, int]]:
        """(image scale, Gauss-Newton iterations) of the keyframe stage, coarse to fine."""
        return list(zip(self.keyframe_scales, self.keyframe_iterations))

    @property
    def sweep_stages(self) -> list[tuple[float, int]]:
        """(image scale, Gauss-Newton iterations) of each sweep, coarse to fine."""
        return list(zip(self.scales, self.iterations))


@dataclass
class FitConfig:
    """Everything ``facecap fit`` needs besides its inputs."""

    device: str = field("auto", "torch device: auto (cuda when available), cpu, cuda, cuda:1, ...")
    cameras: list[str] = field([], "the cameras to fit, by name; the take's others are left out (empty: every camera "
                                   "of the calibration, each of which must then have frames in the take, unless "
                                   "take.json's 'cameras' leaves it out)")
    batch_frames: int = field(8, "frames solved together (their normal system is dense: keep it small)",
                              expert=True)
    reader_threads: int = field(0, "threads that decode the next batch's frames and find the head's outline in "
                                   "them while the current batch is fitted (0: as many as CPU cores)", expert=True)
    photometric: bool = field(True, "run the photometric (analysis-by-synthesis) stages after the landmark init")
    exclude_materials: list[str] = field(
        ["M_EyeLashes", "M_Teeth", "M_GumsTongue", "mouth_interior", "M_ScleraLeft", "M_IrisLeft", "M_ScleraRight",
         "M_IrisRight"],
        "materials left out of the photometric samples (see-through materials always are): hair cards and the "
        "mouth's inside, which the rig does not model well; and the eyeballs, whose sharp edges under the lids "
        "and lashes pull the head pose and identity off at coarse scales. The eye shapes move the lids, not the "
        "eyeballs, so these add only pose, which the skin pins. Name your rig's materials of these kinds",
        expert=True)
    sampler: str = field("vertex", "where the photometric term reads the frames: 'vertex' (the rig's vertices, "
                                   "visibility from a point z-buffer) or 'raster' (points laid over the sampled "
                                   "surface at sample_spacing_px, each view's visibility from a rasterisation with "
                                   "the eyeballs, lashes and mouth drawn)", expert=True)
    sample_spacing_px: float = field(6.0, "raster sampler: the longest gap between neighbouring surface points, in "
                                          "full-resolution pixels at the head (the rig's vertices are points too, "
                                          "so a dense rig gets few more); smaller is denser and slower",
                                     expert=True)
    raster_scale: float = field(0.25, "raster sampler: image scale of the rasterisation that decides which points "
                                      "each view sees", expert=True)
    neutral_degree: int = field(2, "rigs without identity modes: degree of the smooth polynomial neutral "
                                    "correction fitted in their place (0: none)", expert=True)
    qa_video: bool = field(True, "write qa.mp4: a labelled tile per camera with the model's edges on the frame and "
                                 "its signed difference (needs the photometric fit)")
    qa_scale: float = field(0.5, "image scale of the QA video")
    checkpoint_seconds: float = field(60.0, "a fit writes a checkpoint after a stage when this long has passed since "
                                            "the last one (0: after every stage); --resume continues from it")
    landmarks: LandmarkConfig = field(LandmarkConfig(), "landmark source")
    init: InitConfig = field(InitConfig(), "landmark initialisation", expert=True)
    loss: LossWeights = field(LossWeights(), "loss weights", expert=True)
    schedule: ScheduleConfig = field(ScheduleConfig(), "optimisation schedule")
    export: ExportConfig = field(ExportConfig(), "delivery files (the keys of facecap export)")

    def __post_init__(self) -> None:
        require_non_negative(self, ["reader_threads", "neutral_degree", "checkpoint_seconds"])
        if self.batch_frames < 1:
            raise ConfigError(f"batch_frames must be >= 1, got {self.batch_frames}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not self.sample_spacing_px > 0:
            raise ConfigError(f"sample_spacing_px must be > 0, got {self.sample_spacing_px}")
        if not 0 < self.raster_scale <= 1:
            raise ConfigError(f"raster_scale must lie in (0, 1], got {self.raster_scale}")
        if not 0 < self.qa_scale <= 1:
            raise ConfigError(f"qa_scale must lie in (0, 1], got {self.qa_scale}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as err:
                raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}") from err
