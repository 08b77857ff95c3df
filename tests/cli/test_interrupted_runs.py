"""Runs killed mid-way, as a scheduler or a user kills them: a real ``python -m facecap`` process gets SIGTERM
or SIGKILL while it writes, and the folder's previous results stay as they were."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facecap.cli import main
from facecap.publish import PRIVATE_DIR, read_run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "ring.num_cameras=2", "--set", "ring.width=64", "--set", "ring.height=48", "--set", "supersample=1",
        "--set", "backend=torch", "--set", "batch_frames=1"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _start_synth(out: Path, frames: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "facecap", "-q", "synth", "--out", str(out), *TINY,
                             "--set", f"motion.num_frames={frames}", "--set", "seed=7"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until_writing(out: Path, proc: subprocess.Popen, timeout: float = 180.0) -> Path:
    """The run's staging folder, once it holds rendered frames: the run is mid-way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = list((out / PRIVATE_DIR).glob("staging-*/cam01/*.png"))
        if frames:
            return frames[0].parents[1]
        if proc.poll() is not None:
            pytest.fail(f"facecap synth ended before it was killed: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("facecap synth wrote no frame in time")


@pytest.fixture
def previous(tmp_path):
    """An output folder holding a finished synth run: (folder, its files' hashes)."""
    out = tmp_path / "take"
    assert main(["-q", "synth", "--out", str(out), *TINY, "--set", "motion.num_frames=2"]) == 0
    return out, _snapshot(out)


@pytest.mark.slow
def test_sigterm_mid_run_leaves_the_previous_results_and_no_staging(previous):
    out, before = previous
    proc = _start_synth(out, frames=40)
    staging = _wait_until_writing(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "facecap synth: terminated (SIGTERM)" in err, err
    assert not staging.exists()
    assert _snapshot(out) == before                              # hidden files included: nothing is left over
    assert not (out / PRIVATE_DIR).exists()


@pytest.mark.slow
def test_sigkill_mid_run_leaves_the_previous_results_and_the_next_run_removes_its_staging(previous):
    out, before = previous
    proc = _start_synth(out, frames=40)
    staging = _wait_until_writing(out, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and staging.is_dir()
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith(PRIVATE_DIR)} == before
    assert main(["-q", "synth", "--out", str(out), *TINY, "--set", "motion.num_frames=3"]) == 0
    assert not (out / PRIVATE_DIR).exists()
    assert read_run(out)["config"]["motion"]["num_frames"] == 3 and len(list((out / "cam00").iterdir())) == 3
