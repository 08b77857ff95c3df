"""nvdiffrast ``interpolate`` in torch: barycentric blending of vertex attributes, with screen derivatives."""

import torch

from facecap.render.torch_raster.rasterize import take_rows

__all__ = ["interpolate_torch"]


def interpolate_torch(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, rast_db: torch.Tensor | None = None,
                      diff_attrs: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate attr [B or 1, V, C] (or [V, C]) over rast [B, H, W, 4] -> out [B, H, W, C] and out_da.

    out = (1 - u - v) a0 + u a1 + v a2 of the pixel's triangle, 0 where empty. Differentiable w.r.t.
    attr and rast (hence pos). With rast_db and diff_attrs, out_da [B, H, W, 2 * len(diff_attrs)] holds
    (dA/dX, dA/dY) per selected attribute in pixel units; otherwise out_da is empty [B, H, W, 0]
    (nvdiffrast's layout).
    """
    batch, height, width = rast.shape[:3]
    if attr.dim() == 2:
        attr = attr[None]
    num_v, chans = attr.shape[1], attr.shape[2]
    dtype = torch.promote_types(attr.dtype, rast.dtype)
    flat = rast.reshape(-1, 4)
    tri_id = flat[:, 3].detach().long() - 1
    pix = torch.nonzero(tri_id >= 0).squeeze(1)
    b = torch.div(pix, height * width, rounding_mode="floor") if attr.shape[0] > 1 else torch.zeros_like(pix)
    verts = b[:, None] * num_v + tri.long()[tri_id[pix]]
    a = take_rows(attr.reshape(-1, chans).to(dtype), verts)  # [N, 3, C]
    uv = take_rows(flat, pix)[:, :2].to(dtype)
    d1, d2 = a[:, 1] - a[:, 0], a[:, 2] - a[:, 0]
    vals = a[:, 0] + uv[:, 0:1] * d1 + uv[:, 1:2] * d2
    size = batch * height * width
    out = torch.zeros(size, chans, dtype=dtype, device=rast.device).index_copy(0, pix, vals)
    out = out.reshape(batch, height, width, chans)
    if rast_db is None or not diff_attrs:
        return out, torch.zeros(batch, height, width, 0, dtype=dtype, device=rast.device)
    sel = torch.as_tensor(diff_attrs, dtype=torch.long, device=rast.device)
    db = take_rows(rast_db.reshape(-1, 4), pix).to(dtype)
    s1, s2 = d1[:, sel], d2[:, sel]
    ddx = s1 * db[:, 0:1] + s2 * db[:, 2:3]
    ddy = s1 * db[:, 1:2] + s2 * db[:, 3:4]
    da = torch.stack([ddx, ddy], dim=-1).reshape(len(pix), 2 * len(sel))
    out_da = torch.zeros(size, da.shape[1], dtype=dtype, device=rast.device).index_copy(0, pix, da)
    return out, out_da.reshape(batch, height, width, -1)
