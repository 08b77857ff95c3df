"""Vectorised z-buffer visibility: which triangle is nearest at each pixel centre.

Each triangle's screen bounding box is cut into tiles of at most ``TILE`` pixels a side; tiles are
grouped by their size rounded up to one of ``STENCIL_SIZES`` so that a whole group is tested against a
fixed Sy x Sx stencil by broadcasting, with no per-pixel gathers. Coverage uses edge functions
e = A X + (B Y + C), each evaluated from its edge's vertices in index order so the two triangles that
share an edge compute exactly opposite values (no cracks; centres exactly on an edge belong to both and
the depth test picks one). The nearest z/w in [-1, 1] wins, exact depth ties going to the lower triangle
index, through one ``scatter_reduce(amin)`` on the int64 key (order-preserving z/w bits, triangle index).
"""

import torch

__all__ = ["visible_triangles", "TILE", "STENCIL_SIZES", "ELEMENTS_PER_CHUNK"]

TILE = 64  # bounding boxes wider or taller than this are cut into tiles
STENCIL_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # stencil sides; <= 1.5x waste per axis
ELEMENTS_PER_CHUNK = 1 << 21  # stencil pixels tested at once: ~10 float temporaries x 2M x 4 B = 80 MB
MIN_W = 1e-8  # vertices at w below this are behind the eye; their triangles are dropped (no near clipping)
_EMPTY_KEY = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF
_SIGN_FREE_BITS = 0x7FFFFFFF
_SETUP_COLUMNS = 14  # A[3], B[3], C[3], dz/dX, dz/dY, X0, Y0, z0


def _ordered_int(depth: torch.Tensor) -> torch.Tensor:
    """float depths -> int64 with the same order (float32 IEEE bits, negatives mirrored) for the sort key."""
    bits = depth.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return torch.where(bits < 0, bits ^ _SIGN_FREE_BITS, bits)


def _setup(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int, dtype: torch.dtype
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (batch, triangle), in float64: edge equations, depth plane, pixel bounding box.

    Returns setup [B*F, 14] in ``dtype``, box [B*F, 4] int64 (x0, y0, w, h; w = h = 0 when culled),
    and out_of_range [B*F] bool (some vertex z/w outside [-1, 1], so pixels need a depth-range test).
    """
    p = pos.detach().to(torch.float64)
    w = p[..., 3]
    x = (p[..., 0] / w + 1.0) * (0.5 * width)
    y = (p[..., 1] / w + 1.0) * (0.5 * height)
    z = p[..., 2] / w
    tl = tri.long()
    gx, gy, gz, gw = x[:, tl], y[:, tl], z[:, tl], w[:, tl]  # [B, F, 3]
    first = torch.tensor([1, 2, 0], device=tl.device)  # edge i joins vertices i+1, i+2
    second = torch.tensor([2, 0, 1], device=tl.device)
    swap = tl[:, first] > tl[:, second]
    ka = torch.where(swap, second, first).expand_as(gx)
    kb = torch.where(swap, first, second).expand_as(gx)
    ax, ay, bx, by = gx.gather(2, ka), gy.gather(2, ka), gx.gather(2, kb), gy.gather(2, kb)
    ea, eb = by - ay, ax - bx
    ec = -(ax * ea + ay * eb)
    side = torch.sign(ea * gx + eb * gy + ec)  # sign at the opposite vertex: makes inside positive
    ea, eb, ec = ea * side, eb * side, ec * side
    dx1, dy1, dz1 = gx[..., 1] - gx[..., 0], gy[..., 1] - gy[..., 0], gz[..., 1] - gz[..., 0]
    dx2, dy2, dz2 = gx[..., 2] - gx[..., 0], gy[..., 2] - gy[..., 0], gz[..., 2] - gz[..., 0]
    area2 = dx1 * dy2 - dx2 * dy1
    plane_x = (dz1 * dy2 - dz2 * dy1) / area2
    plane_y = (dx1 * dz2 - dx2 * dz1) / area2
    setup = torch.cat([ea, eb, ec, torch.stack([plane_x, plane_y, gx[..., 0], gy[..., 0], gz[..., 0]], -1)], -1)

    ok = (gw > MIN_W).all(-1) & (side != 0).all(-1) & torch.isfinite(setup).all(-1)
    ok &= (gz.amin(-1) <= 1.0) & (gz.amax(-1) >= -1.0)
    far = float(max(height, width) + 2)  # keeps huge off-screen coordinates in int range
    x0 = torch.ceil(gx.amin(-1).clamp(-2.0, far) - 0.5).clamp(min=0)
    x1 = torch.floor(gx.amax(-1).clamp(-2.0, far) - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(gy.amin(-1).clamp(-2.0, far) - 0.5).clamp(min=0)
    y1 = torch.floor(gy.amax(-1).clamp(-2.0, far) - 0.5).clamp(max=height - 1)
    bw = torch.where(ok, (x1 - x0 + 1).clamp(min=0), 0.0)
    bh = torch.where(ok, (y1 - y0 + 1).clamp(min=0), 0.0)
    box = torch.stack([x0, y0, bw, bh], -1).long().reshape(-1, 4)
    out_of_range = ((gz.amin(-1) < -1.0) | (gz.amax(-1) > 1.0)).reshape(-1)
    return setup.reshape(-1, _SETUP_COLUMNS).to(dtype), box, out_of_range


def _tiles(box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut live boxes into tiles of at most TILE x TILE: -> inst [U] (setup row), tiles [U, 4] (x0, y0, w, h)."""
    live = torch.nonzero((box[:, 2] > 0) & (box[:, 3] > 0)).squeeze(1)
    b = box[live]
    ntx, nty = (b[:, 2] + TILE - 1) // TILE, (b[:, 3] + TILE - 1) // TILE
    counts = ntx * nty
    rep = torch.repeat_interleave(torch.arange(len(live), device=box.device), counts)
    j = torch.arange(len(rep), device=box.device) - (torch.cumsum(counts, 0) - counts)[rep]
    tx, ty = (j % ntx[rep]) * TILE, torch.div(j, ntx[rep], rounding_mode="floor") * TILE
    br = b[rep]
    tiles = torch.stack([br[:, 0] + tx, br[:, 1] + ty, (br[:, 2] - tx).clamp(max=TILE),
                         (br[:, 3] - ty).clamp(max=TILE)], -1)
    return live[rep], tiles


def visible_triangles(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """Nearest triangle per pixel centre: pos [B, V, 4] clip, tri [F, 3] -> [B, H, W] int64 index, -1 if empty.

    Not differentiable (visibility is discrete). Computed in pos's dtype after a float64 setup.
    """
    height, width = resolution
    batch, num_tri = pos.shape[0], tri.shape[0]
    dev = pos.device
    with torch.no_grad():
        setup, box, out_of_range = _setup(pos, tri, height, width, pos.dtype)
        inst, tiles = _tiles(box)
        sizes = torch.tensor(STENCIL_SIZES, device=dev)
        group = (torch.searchsorted(sizes, tiles[:, 2].contiguous()) * len(STENCIL_SIZES)
                 + torch.searchsorted(sizes, tiles[:, 3].contiguous()))
        order = torch.argsort(group)
        groups, counts = torch.unique_consecutive(group[order], return_counts=True)
        zbuf = torch.full((batch * height * width,), _EMPTY_KEY, dtype=torch.int64, device=dev)
        start = 0
        for g, n in zip(groups.tolist(), counts.tolist()):
            sx, sy = STENCIL_SIZES[g // len(STENCIL_SIZES)], STENCIL_SIZES[g % len(STENCIL_SIZES)]
            step = max(1, ELEMENTS_PER_CHUNK // (sx * sy))
            for lo in range(start, start + n, step):
                sel = order[lo:min(lo + step, start + n)]
                _test_stencil(setup, inst[sel], tiles[sel], out_of_range, zbuf, sx, sy, num_tri, height, width)
            start += n
        tri_id = torch.where(zbuf == _EMPTY_KEY, torch.full_like(zbuf, -1), zbuf & _LOW32)
    return tri_id.reshape(batch, height, width)


def _test_stencil(setup: torch.Tensor, inst: torch.Tensor, tiles: torch.Tensor, out_of_range: torch.Tensor,
                  zbuf: torch.Tensor, sx: int, sy: int, num_tri: int, height: int, width: int) -> None:
    """Test n tiles against an sy x sx stencil of pixel centres and min-reduce the covered ones into zbuf."""
    dev, dt = setup.device, setup.dtype
    # Slide each stencil inside the image; the extra pixels fall outside the triangle's edges anyway.
    x0 = torch.minimum(tiles[:, 0], torch.tensor(width - sx, device=dev)).clamp(min=0)
    y0 = torch.minimum(tiles[:, 1], torch.tensor(height - sy, device=dev)).clamp(min=0)
    s = setup[inst]
    cx = x0.to(dt)[:, None] + (torch.arange(sx, device=dev, dtype=dt) + 0.5)  # [n, sx] pixel centres
    cy = y0.to(dt)[:, None] + (torch.arange(sy, device=dev, dtype=dt) + 0.5)  # [n, sy]
    col = s[:, 0:3, None] * cx[:, None, :]
    row = s[:, 3:6, None] * cy[:, None, :] + s[:, 6:9, None]
    edge = [col[:, i, None, :] + row[:, i, :, None] for i in range(3)]  # [n, sy, sx] each
    covered = torch.minimum(torch.minimum(edge[0], edge[1]), edge[2]) >= 0
    depth = ((s[:, 9:10] * (cx - s[:, 11:12]))[:, None, :]
             + (s[:, 10:11] * (cy - s[:, 12:13]) + s[:, 13:14])[:, :, None])
    if bool(out_of_range[inst].any()):
        covered &= (depth >= -1.0) & (depth <= 1.0)
    if sx > width or sy > height:
        covered &= (torch.arange(sy, device=dev)[:, None] < height) & (torch.arange(sx, device=dev) < width)
    idx = torch.nonzero(covered.reshape(-1)).squeeze(1)
    stencil = sx * sy
    r = torch.div(idx, stencil, rounding_mode="floor")
    rem = idx - r * stencil
    offsets = (torch.arange(sy, device=dev)[:, None] * width + torch.arange(sx, device=dev)).reshape(-1)
    b = torch.div(inst, num_tri, rounding_mode="floor")
    pixel = ((b * height + y0) * width + x0)[r] + offsets[rem]
    key = _ordered_int(depth.reshape(-1)[idx]) * (1 << 32) + (inst - b * num_tri)[r]
    zbuf.scatter_reduce_(0, pixel, key, "amin")
