"""Tiny synthetic takes of two performers for the batch's tests."""

import numpy as np
import pytest

from facecap.rig import build_demo_head, save_rig
from facecap.testing.small_takes import second_performer, synthesize_small_take

TAKE_FRAMES = 8
CHUNK_FRAMES, CHUNK_OVERLAP = 5, 2
B_IDENTITY = np.array([0.8, -0.5, 0.3, 0.0, 0.4])   # performer B: the demo head moved along its identity modes


@pytest.fixture(scope="session")
def two_performers(tmp_path_factory):
    """Takes a1, a2 of the demo head and b1 of a second performer, each with its landmarks file, and the rig
    file: (root, rig path, {name: take folder})."""
    root = tmp_path_factory.mktemp("batch")
    rig = build_demo_head()
    save_rig(rig, root / "rig.npz")
    other = second_performer(rig, B_IDENTITY)
    takes = {name: synthesize_small_take(performer, root / "takes" / name, seed, TAKE_FRAMES)
             for name, performer, seed in (("a1", rig, 1), ("a2", rig, 2), ("b1", other, 3))}
    return root, root / "rig.npz", takes
