"""nvdiffrast ``texture`` in torch: nearest and bilinear lookups without mipmaps.

Coordinates follow nvdiffrast/common/texture.cu (``indexTextureLinear``): uv (0, 0) is the start of the
texture's first row in memory, u runs along a row and v down the rows; bilinear filtering samples
texel-space (u * Wt - 0.5, v * Ht - 0.5); "clamp" clamps that point to the centres of the edge texels,
"wrap" takes the fractional part of uv first; "nearest" reads texel floor(u * Wt), floor(v * Ht).
"""

import torch

from facecap.render.torch_raster.rasterize import take_rows

__all__ = ["texture_torch"]


def _wrap(uv: torch.Tensor) -> torch.Tensor:
    return uv - torch.floor(uv)


def texture_torch(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear",
                  boundary_mode: str = "clamp") -> torch.Tensor:
    """Sample tex [B or 1, Ht, Wt, C] at uv [B, H, W, 2] -> [B, H, W, C].

    Differentiable w.r.t. tex (both modes) and uv (linear mode; nearest has zero uv gradient, as in
    nvdiffrast).
    """
    batch, height, width = uv.shape[:3]
    tex_b, tex_h, tex_w, chans = tex.shape
    dtype = torch.promote_types(tex.dtype, uv.dtype)
    flat = tex.reshape(-1, chans).to(dtype)
    uv = uv.to(dtype)
    if boundary_mode == "wrap":
        uv = _wrap(uv)
    base = (torch.arange(batch, device=uv.device) * (tex_h * tex_w if tex_b > 1 else 0)).view(batch, 1, 1)
    size = torch.tensor([tex_w, tex_h], dtype=dtype, device=uv.device)
    if filter_mode == "nearest":
        idx = torch.floor(uv.detach() * size).long()
        ix, iy = idx[..., 0].clamp(0, tex_w - 1), idx[..., 1].clamp(0, tex_h - 1)
        return take_rows(flat, base + iy * tex_w + ix)
    t = uv * size - 0.5
    if boundary_mode == "clamp":
        t = torch.maximum(torch.minimum(t, size - 1), torch.zeros_like(size))
    corner = torch.floor(t.detach())
    frac = t - corner
    i0 = corner.long()
    i1 = i0 + 1
    if boundary_mode == "wrap":
        i0 = torch.remainder(i0, torch.tensor([tex_w, tex_h], device=uv.device))
        i1 = torch.remainder(i1, torch.tensor([tex_w, tex_h], device=uv.device))
    else:
        i1 = torch.minimum(i1, torch.tensor([tex_w - 1, tex_h - 1], device=uv.device))
    x0, y0, x1, y1 = i0[..., 0], i0[..., 1], i1[..., 0], i1[..., 1]
    fx, fy = frac[..., 0:1], frac[..., 1:2]
    t00, t10 = take_rows(flat, base + y0 * tex_w + x0), take_rows(flat, base + y0 * tex_w + x1)
    t01, t11 = take_rows(flat, base + y1 * tex_w + x0), take_rows(flat, base + y1 * tex_w + x1)
    top = t00 + fx * (t10 - t00)
    bottom = t01 + fx * (t11 - t01)
    return top + fy * (bottom - top)
