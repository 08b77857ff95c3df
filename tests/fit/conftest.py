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


def tiny_model(rig, take_dir, sampler: str = "vertex"):
    """The fit's model of ``rig`` in the tiny take's units and cameras, every vertex sampled (with ``sampler``
    "raster": and the surface points between them, at the default spacing and raster scale)."""
    from facecap.camera import load_calibration
    from facecap.camera.torch_camera import CameraTensors
    from facecap.fit.appearance import photometric_samples
    from facecap.fit.problem import FrameParams
    from facecap.fit.raster_sampler import photometric_model

    calibration = load_calibration(take_dir / "calibration.json")
    track = rig.in_units(calibration.units)
    config = dataclasses.replace(FitConfig(), exclude_materials=[], sampler=sampler)
    start = FrameParams(torch.zeros(1, rig.num_shapes), torch.eye(3)[None], torch.zeros(1, 3),
                        torch.zeros(rig.num_identities))
    return photometric_model(track, photometric_samples(track, []), CameraTensors.from_calibration(calibration),
                             config, start)


def tiny_batch(take_dir, frames, silhouettes):
    """The tiny take's ``frames``, read."""
    from facecap.fit.feed import read_batch
    from facecap.take import open_take

    with open_take(take_dir) as take:
        return read_batch(take, np.asarray(frames), torch.device("cpu"), silhouettes=silhouettes)


def tiny_observations(take_dir, frames, silhouettes):
    """The tiny take's ``frames`` at full scale, with its landmarks file."""
    return tiny_batch(take_dir, frames, silhouettes).observations(load_landmarks(take_dir / "landmarks.json"), 1.0)


def first_hits(origin: torch.Tensor, direction: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """[n] distance along each ray (origin [3], directions [n, 3], unit) to its nearest triangle of [F, 3, 3]
    (Möller and Trumbore 1997), inf where it hits none."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    p = torch.linalg.cross(direction[:, None], e2[None], dim=-1)
    det = (e1[None] * p).sum(-1)
    s = origin - corners[:, 0]
    u = (s[None] * p).sum(-1) / det
    q = torch.linalg.cross(s, e1, dim=-1)
    v = (direction[:, None] * q[None]).sum(-1) / det
    t = (e2 * q).sum(-1)[None] / det
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return torch.where(hit, t, torch.inf).amin(1)
