"""Reference rasteriser in plain torch with nvdiffrast's output layout (any device, float32 or float64).

Visibility comes from the z-buffer in :mod:`facecap.render.torch_raster.zbuffer` (no gradients).
Then the winning triangle's barycentrics are recomputed from ``pos`` with autograd on, so
``rast[..., :2]`` (and ``rast_db``) carry exact gradients to ``pos`` exactly where nvdiffrast's
``rasterize`` backward sends them (Laine et al. 2020, "Modular Primitives for High-Performance
Differentiable Rendering", §3: rasterize is differentiable through (u, v) and their derivatives).

Conventions (nvdiffrast/torch/ops.py, ``rasterize`` docstring): pixel (x, y) has its centre at clip
((2x + 1) / W - 1, (2y + 1) / H - 1), so row 0 is clip y = -1; (u, v) are the perspective-correct
barycentrics of the triangle's vertices 1 and 2; z/w is the screen-linear depth; the fourth channel is
triangle_id + 1 with 0 for empty pixels. Differences from nvdiffrast's CUDA rasteriser: no sub-pixel
snapping (a pixel centre exactly on a shared edge goes to the nearer, then lower-index triangle), and
triangles with a vertex at w <= 0 are dropped instead of being clipped at the near plane.
"""

import torch

from facecap.render.torch_raster.zbuffer import visible_triangles

__all__ = ["rasterize_torch", "barycentrics", "screen_coords", "take_rows"]


def screen_coords(pos: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip space to pixel units: pos [..., 4] -> X, Y [...] with pixel (x, y) centred at (x + 0.5, y + 0.5),
    and z/w."""
    w = pos[..., 3]
    x = (pos[..., 0] / w + 1.0) * (0.5 * width)
    y = (pos[..., 1] / w + 1.0) * (0.5 * height)
    return x, y, pos[..., 2] / w


def take_rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """table [N, C], idx [...] int64 -> [..., C]; ``index_select`` so the backward is a fast index_add."""
    return torch.index_select(table, 0, idx.reshape(-1)).reshape(*idx.shape, table.shape[1])


def barycentrics(pos: torch.Tensor, tri: torch.Tensor, tri_id: torch.Tensor, with_db: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Differentiable (u, v, z/w) and optionally (du/dX, du/dY, dv/dX, dv/dY) at covered pixel centres.

    pos [B, V, 4]; tri_id [B, H, W] from :func:`visible_triangles`. Returns pix [N] flat pixel indices of
    the covered pixels, vals [N, 4] = (u, v, z/w, id + 1) with z/w and id detached, db [N, 4] or None.
    Derivatives are per pixel, X along a row and Y down the rows (nvdiffrast's rast_db layout).
    """
    batch, height, width = tri_id.shape
    flat = tri_id.reshape(-1)
    pix = torch.nonzero(flat >= 0).squeeze(1)
    f = flat[pix]
    b = torch.div(pix, height * width, rounding_mode="floor")
    rem = pix - b * height * width
    cy = torch.div(rem, width, rounding_mode="floor").to(pos.dtype) + 0.5
    cx = (rem % width).to(pos.dtype) + 0.5
    verts = b[:, None] * pos.shape[1] + tri.long()[f]
    p = take_rows(pos.reshape(-1, 4), verts)  # [N, 3, 4]
    x, y, zw = screen_coords(p, height, width)
    dx1, dy1 = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
    dx2, dy2 = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
    den = dx1 * dy2 - dx2 * dy1
    qx, qy = cx - x[:, 0], cy - y[:, 0]
    b1 = (qx * dy2 - dx2 * qy) / den
    b2 = (dx1 * qy - qx * dy1) / den
    b0 = 1.0 - b1 - b2
    iw = 1.0 / p[..., 3]
    big = torch.stack([b0, b1, b2], dim=1) * iw  # barycentrics over w: screen-linear
    total = big.sum(1)
    u, v = big[:, 1] / total, big[:, 2] / total
    depth = (b0 * zw[:, 0] + b1 * zw[:, 1] + b2 * zw[:, 2]).detach()
    vals = torch.stack([u, v, depth, (f + 1).to(pos.dtype)], dim=1)
    if not with_db:
        return pix, vals, None
    db1x, db1y = dy2 / den, -dx2 / den
    db2x, db2y = -dy1 / den, dx1 / den
    dbx = torch.stack([-db1x - db2x, db1x, db2x], dim=1) * iw
    dby = torch.stack([-db1y - db2y, db1y, db2y], dim=1) * iw
    sx, sy = dbx.sum(1), dby.sum(1)
    db = torch.stack([(dbx[:, 1] - u * sx) / total, (dby[:, 1] - u * sy) / total,
                      (dbx[:, 2] - v * sx) / total, (dby[:, 2] - v * sy) / total], dim=1)
    return pix, vals, db


def rasterize_torch(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int], grad_db: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """nvdiffrast ``rasterize`` in torch: pos [B, V, 4] clip, tri [F, 3] -> rast, rast_db [B, H, W, 4].

    rast = (u, v, z/w, triangle_id + 1), zeros where empty; rast_db = (du/dX, du/dY, dv/dX, dv/dY) per
    pixel. Gradients reach ``pos`` through u, v (and rast_db when ``grad_db``), as in nvdiffrast.
    """
    height, width = resolution
    batch = pos.shape[0]
    tri_id = visible_triangles(pos, tri, resolution)
    pix, vals, db = barycentrics(pos, tri, tri_id, with_db=True)
    if not grad_db:
        db = db.detach()
    size = batch * height * width
    rast = torch.zeros(size, 4, dtype=pos.dtype, device=pos.device).index_copy(0, pix, vals)
    rast_db = torch.zeros(size, 4, dtype=pos.dtype, device=pos.device).index_copy(0, pix, db)
    return rast.reshape(batch, height, width, 4), rast_db.reshape(batch, height, width, 4)
