"""Tiny synthetic takes of two performers for the batch's tests, and a light fit config for them."""

import dataclasses

import numpy as np
import pytest

from facecap.config import save_config
from facecap.fit.config import FitConfig, ScheduleConfig
from facecap.rig import build_demo_head, save_rig
from facecap.rig.demo_head import DemoHeadConfig
from facecap.synth.landmarks import synthetic_landmarks
from facecap.synth.scene import default_scene
from facecap.synth.take import SynthConfig, synthesize_take
from facecap.take.landmarks import save_landmarks

TAKE_FRAMES = 8
CHUNK_FRAMES, CHUNK_OVERLAP = 5, 2
B_IDENTITY = np.array([0.8, -0.5, 0.3, 0.0, 0.4])   # performer B: the demo head moved along its identity modes


def synthesize(performer, root, seed, frames=TAKE_FRAMES):
    """A ``frames``-frame, 3-camera take of ``performer`` with stand-in landmarks (1 px noise)."""
    cfg = SynthConfig()
    cfg = dataclasses.replace(cfg, seed=seed, supersample=1, ring=dataclasses.replace(cfg.ring, num_cameras=3),
                              motion=dataclasses.replace(cfg.motion, num_frames=frames, key_spacing=3))
    calibration, truth = default_scene(performer, cfg)
    take = synthesize_take(performer, calibration, truth, root, cfg)
    save_landmarks(synthetic_landmarks(performer, calibration, truth, 1.0, np.random.default_rng(seed)),
                   take / "landmarks.json")
    return take


def light_config(**changes) -> FitConfig:
    """The demo's small images on a short schedule: a few Gauss-Newton steps per frame, QA video on."""
    return dataclasses.replace(FitConfig(), device="cpu", batch_frames=3, reader_threads=1, **{
        "schedule": ScheduleConfig(keyframes=3, keyframe_scales=[1.0], keyframe_iterations=[3], scales=[1.0],
                                   iterations=[2], passes=1), **changes})


@pytest.fixture(scope="session")
def two_performers(tmp_path_factory):
    """Takes a1, a2 of the demo head and b1 of a second performer, with landmarks files (landmarks.json in
    each take) and the rig: (root, rig path, {name: take folder})."""
    root = tmp_path_factory.mktemp("batch")
    rig = build_demo_head()
    save_rig(rig, root / "rig.npz")
    other = build_demo_head(DemoHeadConfig(seed=1))
    other = other.replace(neutral=other.neutral + np.einsum("i,ivd->vd", B_IDENTITY, other.identity_deltas))
    takes = {"a1": synthesize(rig, root / "takes" / "a1", 1), "a2": synthesize(rig, root / "takes" / "a2", 2),
             "b1": synthesize(other, root / "takes" / "b1", 3)}
    return root, root / "rig.npz", takes


def write_manifest(path, rig, out, takes, config: FitConfig, **keys):
    """A manifest of ``takes`` (entries as the manifest takes them) with ``config`` saved beside it."""
    import yaml
    save_config(config, path.with_name(path.stem + "_fit.yaml"))
    data = {"rig": str(rig), "out": str(out), "takes": takes, "config": path.stem + "_fit.yaml",
            "chunk_frames": CHUNK_FRAMES, "chunk_overlap": CHUNK_OVERLAP, **keys}
    path.write_text(yaml.safe_dump(data))
    return path
