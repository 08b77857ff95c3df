"""Backend parity on a GPU: nvdiffrast against the torch backend on the same device, forward and backward.

Follows pytorch3d's tests/test_rasterize_meshes.py ``_compare_impls``: one scene, random upstream
gradients, outputs and gradients compared. Needs CUDA and nvdiffrast (marker ``cuda``).
"""

import math

import pytest
import torch

from facecap.render import antialias, interpolate, make_context, rasterize, texture
from tests.conftest import shared_path

pytestmark = pytest.mark.cuda

HEIGHT, WIDTH = 240, 320


def _scene(device: torch.device) -> dict:
    from facecap.rig import load_rig

    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    keep = rig.opaque_faces()
    gen = torch.Generator().manual_seed(0)
    verts = torch.tensor(rig.neutral, dtype=torch.float32)
    clips = []
    for yaw in (-0.5, 0.3):
        c, s = math.cos(yaw), math.sin(yaw)
        x = verts @ torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32).T
        depth = 70.0 - x[:, 2]
        clips.append(torch.stack([x[:, 0] * 3.0 * HEIGHT / WIDTH, -x[:, 1] * 3.0, (depth - 40) / 60 * depth, depth], -1))
    return {
        "pos": torch.stack(clips).to(device),
        "tri": torch.tensor(rig.faces[keep], dtype=torch.int32, device=device),
        "uv_tri": torch.tensor(rig.uv_faces[keep], dtype=torch.int32, device=device),
        "uv": torch.tensor(rig.uv, dtype=torch.float32, device=device),
        "colors": torch.rand(1, rig.num_vertices, 3, generator=gen).to(device),
        "tex": torch.rand(1, 64, 64, 3, generator=gen).to(device),
        "upstream": torch.rand(2, HEIGHT, WIDTH, 3, generator=gen).to(device),
    }


def _render(backend: str, scene: dict) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    ctx = make_context(backend, device=scene["pos"].device)
    pos = scene["pos"].clone().requires_grad_()
    colors = scene["colors"].clone().requires_grad_()
    tex = scene["tex"].clone().requires_grad_()
    rast, _ = rasterize(ctx, pos, scene["tri"], (HEIGHT, WIDTH))
    col, _ = interpolate(colors, rast, scene["tri"], ctx=ctx)
    uv, _ = interpolate(scene["uv"], rast, scene["uv_tri"], ctx=ctx)
    img = antialias(col * texture(tex, uv, boundary_mode="wrap", ctx=ctx), rast, pos, scene["tri"], ctx=ctx)
    grads = torch.autograd.grad((img * scene["upstream"]).sum(), (pos, colors, tex))
    return rast.detach(), img.detach(), grads


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_nvdiffrast_matches_torch_backend():
    scene = _scene(torch.device("cuda"))
    rast_nv, img_nv, grads_nv = _render("nvdiffrast", scene)
    rast_t, img_t, grads_t = _render("torch", scene)
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
