"""A tiny trained initialiser of the demo head and a tiny take of it, shared by the learn tests."""

import pytest

from facecap.cli import main
from facecap.rig import build_demo_head, save_rig
from tests.fit.conftest import synthesize_tiny_take

# A train-init run of a few seconds: 12 scenes of 2 views at 32 px, 2 epochs.
TINY_TRAINING = ["data.samples=12", "data.validation=4", "data.views=2", "data.chunk=8", "data.supersample=1",
                 "data.canvas_size=40",
                 "model.crop_size=32", "model.widths=[4,8,8]", "model.features=16", "train.epochs=2",
                 "train.batch=4", "train.device=cpu"]


@pytest.fixture(scope="session")
def demo_take(tmp_path_factory):
    """(rig, take folder, truth): the demo head's 6-frame, 3-camera take with stand-in landmarks."""
    rig = build_demo_head()
    return (rig, *synthesize_tiny_take(rig, tmp_path_factory.mktemp("learn_take")))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(rig path, model path, work folder) of a tiny ``facecap train-init`` run on the demo head."""
    root = tmp_path_factory.mktemp("learn_model")
    save_rig(build_demo_head(), root / "rig.npz")
    args = ["train-init", "--rig", str(root / "rig.npz"), "-o", str(root / "init_model.pt")]
    assert main([*args, *(x for item in TINY_TRAINING for x in ("--set", item))]) == 0
    return root / "rig.npz", root / "init_model.pt", root / "init_model_train"
