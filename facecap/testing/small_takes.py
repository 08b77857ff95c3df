"""Small synthetic takes of the demo head (and of a second performer) for the tests and benchmarks of actor
profiles, chunked fits and batches, with a fit config short enough for them."""

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from facecap.config import save_config
from facecap.fit.config import FitConfig, ScheduleConfig
from facecap.rig.model import Rig
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import save_landmarks

__all__ = ["synthesize_small_take", "short_fit_config", "write_manifest", "second_performer"]


def synthesize_small_take(performer: Rig, folder: Path, seed: int, frames: int) -> Path:
    """A ``frames``-frame, 3-camera take of ``performer`` in ``folder`` (the demo's small images), with stand-in
    landmarks (the truth plus 1 px noise) in ``folder/landmarks.json``; returns the folder."""
    cfg = SynthConfig()
    cfg = dataclasses.replace(cfg, seed=seed, supersample=1, ring=dataclasses.replace(cfg.ring, num_cameras=3),
                              motion=dataclasses.replace(cfg.motion, num_frames=frames, key_spacing=3))
    calibration, truth = default_scene(performer, cfg)
    take = synthesize_take(performer, calibration, truth, folder, cfg)
    save_landmarks(synthetic_landmarks(performer, calibration, truth, 1.0, np.random.default_rng(seed)),
                   take / "landmarks.json")
    return take


def second_performer(rig: Rig, identity: np.ndarray, texture_seed: int = 1) -> Rig:
    """``rig`` as another performer: its neutral moved along its identity modes by ``identity`` [I] (the
    performer's true coefficients) and the demo head's texture painted with another seed."""
    from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
    painted = build_demo_head(DemoHeadConfig(seed=texture_seed)).texture
    return rig.replace(neutral=rig.neutral + np.einsum("i,ivd->vd", identity, rig.identity_deltas), texture=painted)


def short_fit_config(**changes) -> FitConfig:
    """The fit on a short schedule (three keyframes at full scale, one sweep of two iterations), on the CPU."""
    schedule = ScheduleConfig(keyframes=3, keyframe_scales=[1.0], keyframe_iterations=[3], scales=[1.0],
                              iterations=[2], passes=1)
    return dataclasses.replace(FitConfig(), device="cpu", batch_frames=3, reader_threads=1,
                               **{"schedule": schedule, **changes})


def write_manifest(path: Path, rig: Path, out: Path, takes: list, config: FitConfig, **keys) -> Path:
    """A batch manifest at ``path`` of ``takes`` (entries as a manifest lists them) and ``keys``, with ``config``
    saved beside it as its fit config."""
    config_path = path.with_name(path.stem + "_fit.yaml")
    save_config(config, config_path)
    path.write_text(yaml.safe_dump({"rig": str(rig), "out": str(out), "takes": takes, "config": config_path.name,
                                    **keys}))
    return path
