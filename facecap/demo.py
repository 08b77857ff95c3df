"""The built-in demo: synthesise a take of the demo head, fit it, export, and score it against the truth.

Needs no data files: the head is procedural, the take is rendered on the spot, and the
landmark detector is stood in for by the true landmarks plus detector-like noise (a fresh machine
has no MediaPipe model; give one with ``model_path`` to use the real detector).
"""

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecap.config import field
from facecap.fit.accuracy import AccuracyReport, animation_accuracy
from facecap.fit.config import FitConfig, ScheduleConfig
from facecap.fit.outputs import write_fit_outputs
from facecap.fit.pipeline import fit_take
from facecap.rig.demo_head import build_demo_head
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import save_landmarks

__all__ = ["DemoConfig", "run_demo"]

log = logging.getLogger(__name__)


def _demo_fit() -> FitConfig:
    """The fit defaults, set for the demo's small images (320x240): no eighth-scale stage (a head
    60 px in radius would be 8 px there), and a shorter schedule of one pass, so that it runs in under
    a minute. More passes let the weights and pose absorb the keyframes' identity error on views this
    small, where on larger views a second pass helps (docs/decisions.md, "Two sweeps")."""
    return FitConfig(schedule=ScheduleConfig(keyframe_scales=[0.25, 0.5, 1.0], keyframe_iterations=[8, 6, 4],
                                             scales=[0.5, 1.0], iterations=[4, 3], passes=1))


@dataclass
class DemoConfig:
    """Settings of ``facecap demo``."""

    landmark_noise_px: float = field(1.0, "noise of the stand-in landmark detector, pixels")
    model_path: str | None = field(None, "use MediaPipe's face_landmarker.task instead of the stand-in")
    synth: SynthConfig = field(SynthConfig(), "the synthetic take (cameras, frames, noise)")
    fit: FitConfig = field(_demo_fit(), "the fit")


def run_demo(config: DemoConfig, out_dir: str | Path, published_as: str | Path | None = None) -> AccuracyReport:
    """Synthesise, fit and export into ``out_dir``; returns (and writes) the accuracy against the truth.

    ``published_as``: the folder ``out_dir`` becomes once published (:mod:`facecap.publish`), so that the
    paths the fit's report records name it rather than the staging folder.
    """
    out_dir = Path(out_dir)
    published_as = out_dir if published_as is None else Path(published_as)
    rig = build_demo_head()
    calibration, truth = default_scene(rig, config.synth)
    take = synthesize_take(rig, calibration, truth, out_dir / "take", config.synth)
    fit_config = config.fit
    if config.model_path:
        fit_config = dataclasses.replace(fit_config, landmarks=dataclasses.replace(
            fit_config.landmarks, model_path=config.model_path, landmarks_file=None))
    else:
        rng = np.random.default_rng(config.synth.seed)
        landmarks = synthetic_landmarks(rig, calibration, truth, config.landmark_noise_px, rng)
        save_landmarks(landmarks, take / "landmarks.json")
        fit_config = dataclasses.replace(fit_config, landmarks=dataclasses.replace(
            fit_config.landmarks, landmarks_file=str(take / "landmarks.json")))
    result = fit_take(take, take / "calibration.json", rig, fit_config, out_dir / "fit")
    if fit_config.landmarks.landmarks_file:
        fit_config = dataclasses.replace(fit_config, landmarks=dataclasses.replace(
            fit_config.landmarks, landmarks_file=str(published_as / "take" / "landmarks.json")))
    write_fit_outputs(result, rig, fit_config, out_dir / "fit")
    accuracy = animation_accuracy(rig, result.animation, truth)
    (out_dir / "accuracy.json").write_text(json.dumps(accuracy.as_dict(), indent=1))
    return accuracy
