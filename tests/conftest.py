"""Shared fixtures: the ../shared data folder (skipping with a reason when absent) and tolerances."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(os.environ.get("FACECAP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))

# Per-dtype tolerances for comparing torch results with float64 references (kornia's testing/base.py idea).
DTYPE_TOLERANCE = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-10}}


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips the calling test, saying why, when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared data ({path} not found; CI has it beside the checkout)")
    return path


@pytest.fixture
def sigint_interrupts():
    """SIGINT raises KeyboardInterrupt during the test, as it does in a terminal: a shell starts a background
    job (``cmd &``, nohup, some CI runners) with SIGINT ignored, and Python then leaves it ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def ict_face_rig():
    from facecap.rig import load_rig
    return load_rig(shared_path("data", "rigs", "ict_face.npz"))


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("FACECAP_TEST_DEVICE", "cpu"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
