"""Backend parity on a GPU: nvdiffrast against the torch backend on the same device, forward and backward.

Follows pytorch3d's tests/test_rasterize_meshes.py ``_compare_impls``: one scene, random upstream
gradients, outputs and gradients compared. Needs CUDA and nvdiffrast (marker ``cuda``).
"""

import pytest
import torch

from facecap.render import make_context
from facecap.testing.orbit_scene import orbit_scene, render_with_gradients
from tests.conftest import shared_path

pytestmark = pytest.mark.cuda

HEIGHT, WIDTH = 240, 320


def _scene(device: torch.device) -> dict:
    from facecap.rig import load_rig
    return orbit_scene(load_rig(shared_path("data", "rigs", "ict_full.npz")), (-0.5, 0.3), HEIGHT, WIDTH, 64, device)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_nvdiffrast_matches_torch_backend():
    scene = _scene(torch.device("cuda"))
    rast_nv, img_nv, grads_nv = render_with_gradients(make_context("nvdiffrast", device=scene["pos"].device), scene)
    rast_t, img_t, grads_t = render_with_gradients(make_context("torch", device=scene["pos"].device), scene)
    mask_nv, mask_t = rast_nv[..., 3] > 0, rast_t[..., 3] > 0
    assert float((mask_nv & mask_t).sum() / (mask_nv | mask_t).sum()) > 0.999
    same = (rast_nv[..., 3] == rast_t[..., 3]) & mask_nv
    assert float(same.sum() / mask_nv.sum()) > 0.99
    torch.testing.assert_close(rast_nv[same][:, :3], rast_t[same][:, :3], atol=1e-3, rtol=0)
    assert float((img_nv - img_t).abs().mean()) < 1e-3
    names = ("pos", "colors", "tex")
    for name, g_nv, g_t in zip(names, grads_nv, grads_t):
        assert _cosine(g_nv, g_t) > 0.99, name
        assert float((g_nv - g_t).norm() / g_nv.norm()) < 0.1, name
