"""A fixed scene for exercising the rasteriser ops: a rig turned to a few yaw angles, straight in clip space.

One step renders it textured, vertex-coloured and antialiased, then backpropagates a random upstream
gradient to positions, colours and texture. The CUDA parity tests compare backends on it and
``tools/bench_render.py`` times it, so both measure the same thing.
"""

import math
from collections.abc import Sequence

import torch

from facecap.render.ops import antialias, interpolate, rasterize, texture
from facecap.rig.model import Rig

__all__ = ["orbit_scene", "render_with_gradients"]

CAMERA_DISTANCE = 70.0  # rig units in front of the head (ICT: cm)
FOCAL_NDC = 3.0         # focal length in normalised device coordinates
NEAR, DEPTH_RANGE = 40.0, 60.0  # z/w = (depth - NEAR) / DEPTH_RANGE, inside [-1, 1] for the head


def orbit_scene(rig: Rig, yaws: Sequence[float], height: int, width: int, texture_size: int,
                device: torch.device, seed: int = 0) -> dict:
    """Clip-space positions of ``rig``'s neutral at each yaw, its drawn triangles and UVs, random colours,
    texture and upstream gradient."""
    keep = rig.opaque_faces()
    gen = torch.Generator().manual_seed(seed)
    verts = torch.tensor(rig.neutral, dtype=torch.float32)
    clips = []
    for yaw in yaws:
        c, s = math.cos(yaw), math.sin(yaw)
        x = verts @ torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32).T
        depth = CAMERA_DISTANCE - x[:, 2]
        z = (depth - NEAR) / DEPTH_RANGE * depth
        clips.append(torch.stack([x[:, 0] * FOCAL_NDC * height / width, -x[:, 1] * FOCAL_NDC, z, depth], -1))
    return {
        "pos": torch.stack(clips).to(device),
        "tri": torch.tensor(rig.faces[keep], dtype=torch.int32, device=device),
        "uv_tri": torch.tensor(rig.uv_faces[keep], dtype=torch.int32, device=device),
        "uv": torch.tensor(rig.uv, dtype=torch.float32, device=device),
        "colors": torch.rand(1, rig.num_vertices, 3, generator=gen).to(device),
        "tex": torch.rand(1, texture_size, texture_size, 3, generator=gen).to(device),
        "upstream": torch.rand(len(yaws), height, width, 3, generator=gen).to(device),
        "resolution": (height, width),
    }


def render_with_gradients(ctx, scene: dict) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """(rasteriser output, image, gradients w.r.t. positions, colours and texture) of one step."""
    pos = scene["pos"].detach().requires_grad_()
    colors = scene["colors"].detach().requires_grad_()
    tex = scene["tex"].detach().requires_grad_()
    rast, _ = rasterize(ctx, pos, scene["tri"], scene["resolution"])
    col, _ = interpolate(colors, rast, scene["tri"], ctx=ctx)
    uv, _ = interpolate(scene["uv"], rast, scene["uv_tri"], ctx=ctx)
    img = antialias(col * texture(tex, uv, boundary_mode="wrap", ctx=ctx), rast, pos, scene["tri"], ctx=ctx)
    grads = torch.autograd.grad((img * scene["upstream"]).sum(), (pos, colors, tex))
    return rast.detach(), img.detach(), grads
