"""Reference rasteriser in plain torch with nvdiffrast's output layout (any device, float32 or float64).

Visibility is a chunked z-buffer: every triangle's screen bounding box is expanded into candidate
(triangle, pixel) pairs (``torch.repeat_interleave``), edge functions keep the covered pairs, and a
``scatter_reduce(amin)`` over the key ``(z/w, triangle id)`` keeps the nearest triangle per pixel.
Then the winning triangle's barycentrics are recomputed from ``pos`` with autograd on, so
``rast[..., :2]`` (and ``rast_db``) carry exact gradients to ``pos`` exactly where nvdiffrast's
``rasterize`` backward sends them (Laine et al. 2020, "Modular Primitives for High-Performance
Differentiable Rendering", §3: rasterize is differentiable through (u, v) and their derivatives).

Conventions (nvdiffrast/torch/ops.py, ``rasterize`` docstring): pixel (x, y) has its centre at clip
((2x + 1) / W - 1, (2y + 1) / H - 1), so row 0 is clip y = -1; (u, v) are the perspective-correct
barycentrics of the triangle's vertices 1 and 2; z/w is the screen-linear depth; the fourth channel is
triangle_id + 1 with 0 for empty pixels. Differences from nvdiffrast's CUDA rasteriser: no sub-pixel
snapping (coverage ties on shared edges are broken by a top-left rule instead), and triangles with a
vertex at w <= 0 are dropped instead of being clipped at the near plane.
"""

import torch

__all__ = ["rasterize_torch", "visible_triangles", "PAIRS_PER_CHUNK"]

PAIRS_PER_CHUNK = 1 << 22  # candidate pairs per chunk: ~20 temporaries x 4M x 8 bytes keeps a chunk under ~1 GB
_MIN_W = 1e-8  # vertices at w below this are behind the eye; their triangles are dropped (no near clipping)
_EMPTY_KEY = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF
_SIGN_FREE_BITS = 0x7FFFFFFF


def screen_coords(pos: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip space to pixel units: pos [..., 4] -> X, Y [...] with pixel (x, y) centred at (x + 0.5, y + 0.5), and z/w."""
    w = pos[..., 3]
    x = (pos[..., 0] / w + 1.0) * (0.5 * width)
    y = (pos[..., 1] / w + 1.0) * (0.5 * height)
    return x, y, pos[..., 2] / w


def _ordered_int(depth: torch.Tensor) -> torch.Tensor:
    """float32 depths -> int64 with the same order (IEEE bits, negatives mirrored), for packing into a sort key."""
    bits = depth.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, bits ^ _SIGN_FREE_BITS, bits)


def _triangle_setup(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (batch, triangle): packed edge equations, depth weights and bounding boxes, and the pair count.

    Returns setup [B*F, 18] (A[3], B[3], C[3], own[3] as 0/1, z/w / area [3], x0, y0, box width) and
    count [B*F] candidate pixels (0 for culled triangles). Edge i is opposite vertex i; its equation
    e_i = A X + B Y + C is computed from the edge's vertices in index order, so two triangles sharing an
    edge evaluate exactly opposite values (watertight), then flipped so the inside is e >= 0.
    """
    x, y, zw = screen_coords(pos, height, width)
    tl = tri.long()
    gx, gy, gz = x[:, tl], y[:, tl], zw[:, tl]  # [B, F, 3]
    gw = pos[..., 3][:, tl]
    ia, ib = tl[:, [1, 2, 0]], tl[:, [2, 0, 1]]  # edge i runs between vertices i+1 and i+2
    swap = ia > ib
    ka = torch.where(swap, torch.tensor([2, 0, 1], device=tl.device), torch.tensor([1, 2, 0], device=tl.device))
    kb = torch.where(swap, torch.tensor([1, 2, 0], device=tl.device), torch.tensor([2, 0, 1], device=tl.device))
    ax, ay = gx.gather(2, ka.expand_as(gx)), gy.gather(2, ka.expand_as(gy))
    bx, by = gx.gather(2, kb.expand_as(gx)), gy.gather(2, kb.expand_as(gy))
    ea, eb = by - ay, ax - bx
    ec = -(ax * ea + ay * eb)
    area2 = (gx[..., 1] - gx[..., 0]) * (gy[..., 2] - gy[..., 0]) - (gx[..., 2] - gx[..., 0]) * (gy[..., 1] - gy[..., 0])
    # Sign of the opposite vertex in each edge equation: makes the inside positive whatever the winding.
    side = torch.sign(ea * gx + eb * gy + ec)
    ea, eb, ec = ea * side, eb * side, ec * side
    own = (ea > 0) | ((ea == 0) & (eb > 0))  # top-left rule: ties on an edge go to one of its two triangles
    inv_area = 1.0 / area2.abs()
    zscaled = gz * inv_area[..., None]

    ok = (gw > _MIN_W).all(-1) & (area2 != 0) & torch.isfinite(area2) & (side != 0).all(-1)
    ok &= (gz.amin(-1) <= 1.0) & (gz.amax(-1) >= -1.0)
    big = float(max(height, width) + 2)
    x0 = torch.ceil(gx.amin(-1).clamp(-2.0, big) - 0.5).clamp(min=0)
    x1 = torch.floor(gx.amax(-1).clamp(-2.0, big) - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(gy.amin(-1).clamp(-2.0, big) - 0.5).clamp(min=0)
    y1 = torch.floor(gy.amax(-1).clamp(-2.0, big) - 0.5).clamp(max=height - 1)
    bw, bh = (x1 - x0 + 1).clamp(min=0), (y1 - y0 + 1).clamp(min=0)
    count = torch.where(ok, bw * bh, torch.zeros_like(bw)).long()
    setup = torch.cat([ea, eb, ec, own.to(ea.dtype), zscaled, x0[..., None], y0[..., None], bw[..., None]], dim=-1)
    return setup.reshape(-1, setup.shape[-1]), count.reshape(-1)


def visible_triangles(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """Nearest triangle per pixel: pos [B, V, 4] clip, tri [F, 3] -> [B, H, W] int64 triangle index, -1 where empty.

    Depth test keeps the smallest z/w in [-1, 1]; exact depth ties go to the lower triangle index.
    Not differentiable (visibility is discrete).
    """
    height, width = resolution
    batch, num_tri = pos.shape[0], tri.shape[0]
    with torch.no_grad():
        setup, count = _triangle_setup(pos.detach(), tri, height, width)
        live = torch.nonzero(count).squeeze(1)
        counts = count[live]
        zbuf = torch.full((batch * height * width,), _EMPTY_KEY, dtype=torch.int64, device=pos.device)
        ends = torch.cumsum(counts, 0)
        start = 0
        while start < len(live):
            base = int(ends[start - 1]) if start else 0
            stop = max(int(torch.searchsorted(ends, base + PAIRS_PER_CHUNK, right=True)), start + 1)
            _rasterize_chunk(setup, live[start:stop], counts[start:stop], zbuf, num_tri, height, width)
            start = stop
        tri_id = torch.where(zbuf == _EMPTY_KEY, torch.full_like(zbuf, -1), zbuf & _LOW32)
    return tri_id.reshape(batch, height, width)


def _rasterize_chunk(setup: torch.Tensor, live: torch.Tensor, counts: torch.Tensor, zbuf: torch.Tensor,
                     num_tri: int, height: int, width: int) -> None:
    """Expand the chunk's triangles into candidate pixels, test coverage and depth, and min-reduce into zbuf."""
    local = torch.repeat_interleave(torch.arange(len(live), device=live.device), counts)
    offsets = torch.cumsum(counts, 0) - counts
    k = torch.arange(len(local), device=live.device) - offsets[local]
    inst = live[local]
    s = setup[inst]
    bw = s[:, 17].long()
    px = s[:, 15].long() + k % bw
    py = s[:, 16].long() + torch.div(k, bw, rounding_mode="floor")
    cx = px.to(s.dtype) + 0.5
    cy = py.to(s.dtype) + 0.5
    e = s[:, 0:3] * cx[:, None] + s[:, 3:6] * cy[:, None] + s[:, 6:9]
    inside = ((e > 0) | ((e == 0) & (s[:, 9:12] > 0))).all(1)
    depth = (e * s[:, 12:15]).sum(1)
    inside &= (depth >= -1.0) & (depth <= 1.0)
    inst, px, py, depth = inst[inside], px[inside], py[inside], depth[inside]
    b = torch.div(inst, num_tri, rounding_mode="floor")
    pixel = (b * height + py) * width + px
    key = _ordered_int(depth) * (1 << 32) + (inst - b * num_tri)
    zbuf.scatter_reduce_(0, pixel, key, "amin")


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
    p = pos.reshape(-1, 4)[verts]  # [N, 3, 4]
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
