"""The fit's test take: the demo head in a 6-frame, 3-camera take with stand-in landmarks, and helpers around it."""

import dataclasses

import numpy as np
import pytest
import torch

from facecap.demo import DemoConfig
from facecap.fit.config import FitConfig, LandmarkConfig, ScheduleConfig
from facecap.rig import build_demo_head
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import load_landmarks, save_landmarks


def synthesize_tiny_take(performer, root):
    """A 6-frame, 3-camera take of ``performer`` with stand-in landmarks (1 px noise): (take, truth)."""
    cfg = SynthConfig()
    cfg = dataclasses.replace(cfg, supersample=1, ring=dataclasses.replace(cfg.ring, num_cameras=3),
                              motion=dataclasses.replace(cfg.motion, num_frames=6, key_spacing=3))
    calibration, truth = default_scene(performer, cfg)
    take = synthesize_take(performer, calibration, truth, root / "take", cfg)
    save_landmarks(synthetic_landmarks(performer, calibration, truth, 1.0, np.random.default_rng(0)),
                   take / "landmarks.json")
    return take, truth


@pytest.fixture(scope="session")
def tiny_take(tmp_path_factory):
    """The demo head's tiny take: (rig, take, truth)."""
    rig = build_demo_head()
    return (rig, *synthesize_tiny_take(rig, tmp_path_factory.mktemp("fit")))


def tiny_config(take, photometric: bool) -> FitConfig:
    """The demo's fit settings (its small images), on a shorter schedule."""
    return dataclasses.replace(DemoConfig().fit, device="cpu", photometric=photometric, batch_frames=3,
                               landmarks=LandmarkConfig(landmarks_file=str(take / "landmarks.json")),
                               schedule=ScheduleConfig(keyframe_scales=[0.5, 1.0], keyframe_iterations=[6, 4],
                                                       scales=[0.5, 1.0], iterations=[4, 3]))


def tiny_model(rig, take_dir):
    """The fit's model of ``rig`` in the tiny take's units and cameras, every vertex sampled."""
    from facecap.camera import load_calibration
    from facecap.camera.torch_camera import CameraTensors
    from facecap.fit.appearance import photometric_samples
    from facecap.fit.problem import FitModel

    calibration = load_calibration(take_dir / "calibration.json")
    track = rig.in_units(calibration.units)
    return FitModel.build(track, CameraTensors.from_calibration(calibration), photometric_samples(track, []), "cpu")


def tiny_batch(take_dir, frames, silhouettes):
    """The tiny take's ``frames``, read."""
    from facecap.fit.feed import read_batch
    from facecap.take import open_take

    with open_take(take_dir) as take:
        return read_batch(take, np.asarray(frames), torch.device("cpu"), silhouettes=silhouettes)


def tiny_observations(take_dir, frames, silhouettes):
    """The tiny take's ``frames`` at full scale, with its landmarks file."""
    return tiny_batch(take_dir, frames, silhouettes).observations(load_landmarks(take_dir / "landmarks.json"), 1.0)
