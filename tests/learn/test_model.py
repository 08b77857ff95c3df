"""The network: output shapes, views pooled by confidence, absent views ignored."""

import pytest
import torch

from facecap.errors import ConfigError, ShapeError
from facecap.geometry.rotations import rotation_6d_to_matrix
from facecap.learn.config import ModelConfig
from facecap.learn.model import InitNet

CONFIG = ModelConfig(crop_size=32, widths=[4, 8, 8], features=16)


def test_outputs_have_their_shapes_and_start_facing_the_camera():
    net = InitNet(CONFIG, num_shapes=7, num_identities=3).eval()
    crops = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = net(crops, torch.ones(2, 3, dtype=torch.bool))
    assert out.rotation6d.shape == (2, 3, 6) and out.position.shape == (2, 3, 3)
    assert out.weights.shape == (2, 7) and out.identity.shape == (2, 3) and out.view_weights.shape == (2, 3, 7)
    facing = torch.diag(torch.tensor([1.0, -1.0, -1.0]))       # head +z towards the camera, +y up
    assert (rotation_6d_to_matrix(out.rotation6d) - facing).abs().max() < 0.5


def test_absent_views_do_not_change_the_answer_and_one_view_answers_alone():
    net = InitNet(CONFIG, num_shapes=5, num_identities=0).eval()
    g = torch.Generator().manual_seed(1)
    crops = torch.rand(1, 3, 3, 32, 32, generator=g)
    mask = torch.tensor([[True, False, True]])
    out = net(crops, mask)
    other = crops.clone()
    other[0, 1] = torch.rand(3, 32, 32, generator=g)
    torch.testing.assert_close(net(other, mask).weights, out.weights)
    alone = net(crops, torch.tensor([[False, False, True]]))
    torch.testing.assert_close(alone.weights, alone.view_weights[:, 2])
    assert out.identity.shape == (1, 0)
    none = net(crops, torch.zeros(1, 3, dtype=torch.bool))                 # a frame no view shows
    assert torch.isfinite(none.weights).all() and torch.isfinite(none.position).all()


def test_bad_inputs_and_settings_are_reported():
    net = InitNet(CONFIG, 5, 0)
    with pytest.raises(ShapeError, match="crops must be"):
        net(torch.rand(3, 3, 32, 32), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ShapeError, match="mask must be"):
        net(torch.rand(1, 2, 3, 32, 32), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="multiple"):
        ModelConfig(crop_size=36, widths=[4, 8, 8])


def test_folding_batchnorm_into_the_convolutions_keeps_the_answers():
    net = InitNet(CONFIG, num_shapes=5, num_identities=2)
    crops = torch.rand(4, 2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(4, 2, dtype=torch.bool)
    net(crops, mask)                                                  # one training step's batch statistics
    expected = net.eval()(crops, mask)
    fused = net.fuse_batchnorm()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    out = fused(crops, mask)
    for name in ("rotation6d", "position", "weights", "identity", "view_weights"):
        torch.testing.assert_close(getattr(out, name), getattr(expected, name), atol=1e-5, rtol=1e-4)
