"""Checkpoints: a fit killed between stages resumes to the uninterrupted fit's animation, and refuses a
checkpoint of another fit."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from facecap.config import save_config
from facecap.errors import FacecapError
from facecap.fit.checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, save_checkpoint
from facecap.fit.problem import FrameParams, SequenceState
from facecap.rig import save_rig
from tests.fit.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def _fit_command(take, rig_path, config_path, out, resume=False):
    return [sys.executable, "-m", "facecap", "-q", "fit", str(take), "--rig", str(rig_path), "--config",
            str(config_path), "--out", str(out)] + (["--resume"] if resume else [])


def _single_threaded_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


@pytest.mark.slow
def test_fit_killed_by_sigkill_resumes_to_the_uninterrupted_animation(tiny_take, tmp_path):
    """A real ``facecap fit`` process is killed (SIGKILL) once it has written a checkpoint; ``--resume``
    then gives exactly the animation of a run that was never interrupted (one thread), and a QA video of
    every frame, made of the parts written before and after the kill."""
    rig, take, _ = tiny_take
    rig_path = tmp_path / "rig.npz"
    save_rig(rig, rig_path)
    config = dataclasses.replace(tiny_config(take, True), checkpoint_seconds=0.0)
    config_path = tmp_path / "fit.yaml"
    save_config(config, config_path)
    env = _single_threaded_env()

    subprocess.run(_fit_command(take, rig_path, config_path, tmp_path / "whole"), env=env, check=True, timeout=600)
    whole = json.loads((tmp_path / "whole" / "animation.json").read_text())

    out = tmp_path / "killed"
    process = subprocess.Popen(_fit_command(take, rig_path, config_path, out), env=env)
    checkpoint = out / ".facecap" / "cache" / CHECKPOINT_NAME
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the fit ended before it wrote a checkpoint"
    stages_done = torch.load(checkpoint, weights_only=True)["stages_done"]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "animation.json").exists()

    subprocess.run(_fit_command(take, rig_path, config_path, out, resume=True), env=env, check=True, timeout=600)
    resumed = json.loads((out / "animation.json").read_text())
    assert stages_done >= 1
    assert resumed["frames"] == whole["frames"]
    assert not checkpoint.exists()                     # a finished fit leaves no checkpoint behind
    assert imageio_ffmpeg.count_frames_and_secs(str(out / "qa.mp4"))[0] == len(whole["frames"])


def _state(T=4, K=3):
    gen = torch.Generator().manual_seed(0)
    params = FrameParams(torch.rand(T, K, generator=gen), torch.eye(3).expand(T, 3, 3).clone(), torch.zeros(T, 3),
                         torch.rand(2, generator=gen))
    state = SequenceState.start(params, damping=0.25)
    state.landmark_offsets = np.full((2, 5, 2), 0.5)
    state.record("pass1@1", [3.0, 2.0])
    return state


def test_checkpoint_round_trip_keeps_the_state_exactly(tmp_path):
    state = _state()
    path = tmp_path / CHECKPOINT_NAME
    print_ = {"the rig": "abc", "config key 'loss.l1'": "0.0033"}
    save_checkpoint(path, Checkpoint(5, state, None, np.array([1.0, np.nan]), np.zeros((2, 3)), print_))
    loaded = load_checkpoint(path, print_, torch.device("cpu"))
    assert loaded.stages_done == 5 and loaded.loss is None
    assert torch.equal(loaded.state.weights, state.weights) and torch.equal(loaded.state.prior.identity,
                                                                            state.prior.identity)
    assert loaded.state.damping == 0.25 and loaded.state.history == {"pass1@1": [3.0, 2.0]}
    np.testing.assert_array_equal(loaded.state.landmark_offsets, state.landmark_offsets)
    np.testing.assert_array_equal(loaded.photometric_rms, [1.0, np.nan])


def test_checkpoint_of_another_fit_is_refused_naming_what_changed(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    saved = {"the rig": "abc", "config key 'loss.l1'": "0.0033", "the take's frames": "x"}
    save_checkpoint(path, Checkpoint(1, _state(), None, np.zeros(4), np.zeros((4, 3)), saved))
    with pytest.raises(FacecapError, match=r"config key 'loss.l1': 0.0033 then, 0.005 now"):
        load_checkpoint(path, {**saved, "config key 'loss.l1'": "0.005"}, torch.device("cpu"))
    with pytest.raises(FacecapError, match="the rig changed"):
        load_checkpoint(path, {**saved, "the rig": "abd"}, torch.device("cpu"))
    with pytest.raises(FacecapError, match="nothing to resume"):
        load_checkpoint(tmp_path / "none.pt", saved, torch.device("cpu"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FacecapError, match="cannot read the checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", saved, torch.device("cpu"))
