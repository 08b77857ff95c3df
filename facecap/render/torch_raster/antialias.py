"""nvdiffrast ``antialias`` in torch: analytic silhouette-edge antialiasing, vectorised over pixel pairs.

Laine et al. 2020, "Modular Primitives for High-Performance Differentiable Rendering", §4: wherever two
horizontally or vertically neighbouring pixels show different triangles, the nearer triangle's
silhouette edge that crosses the segment between the pixel centres (at fraction dc) blends the two
colours by alpha = ±(0.5 - dc); because dc depends on the edge's vertices, the blend carries gradients
to pos. This follows nvdiffrast/common/antialias.cu (``AntialiasFwdAnalysisKernel``) step by step, with
autograd in place of its hand-written ``AntialiasGradKernel`` (same derivative: only the two edge
vertices receive gradients, none when alpha saturates). Silhouettes are found through each edge's
opposite vertex in the neighbouring triangle; edges shared by more than two triangles count as
silhouettes (nvdiffrast keeps the first two triangles it hashes, in GPU order).
"""

import torch

from facecap.render.torch_raster.rasterize import screen_coords, take_rows

__all__ = ["antialias_torch", "opposite_vertices"]

_F32_MAX = float(torch.finfo(torch.float32).max)  # nvdiffrast's "no edge" sentinel
_EDGE_EPS = 0.0625  # antialias.cu: "Expect no more than 1/16 pixel inaccuracy."


def opposite_vertices(tri: torch.Tensor) -> torch.Tensor:
    """For each triangle edge i (opposite vertex i), the vertex across it in the neighbouring triangle.

    tri [F, 3] -> [F, 3] int64, -1 for boundary edges, edges of more than two triangles and degenerate
    triangles (nvdiffrast's edge-vertex hash, built with a sort instead of a hash table).
    """
    t = tri.long()
    num = len(t)
    a, b = t[:, [1, 2, 0]], t[:, [2, 0, 1]]
    span = int(t.max()) + 1 if num else 1
    key = torch.minimum(a, b) * span + torch.maximum(a, b)
    degenerate = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 2] == t[:, 0])
    unique_neg = -1 - torch.arange(3 * num, device=t.device).view(num, 3)
    key = torch.where(degenerate[:, None], unique_neg, key).reshape(-1)
    order = torch.argsort(key)
    sk = key[order]
    _, inverse, counts = torch.unique_consecutive(sk, return_inverse=True, return_counts=True)
    pos_in_sorted = torch.arange(len(sk), device=t.device)
    nxt = torch.clamp(pos_in_sorted + 1, max=len(sk) - 1)
    partner = torch.where(sk[nxt] == sk, nxt, pos_in_sorted - 1)
    pairable = (counts[inverse] == 2) & (sk >= 0)
    opp_sorted = torch.where(pairable, t.reshape(-1)[order[partner.clamp(min=0)]], torch.full_like(sk, -1))
    out = torch.empty_like(opp_sorted)
    out[order] = opp_sorted
    return out.view(num, 3)


def _same_sign(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sign-bit equality, as antialias.cu's ``same_sign`` (so +0 and -0 differ)."""
    return torch.signbit(a) == torch.signbit(b)


def _rational_gt(n0: torch.Tensor, n1: torch.Tensor, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
    """n0 / d0 > n1 / d1 without dividing (antialias.cu ``rational_gt``)."""
    return (n0 * d1 > n1 * d0) == _same_sign(d0, d1)


def _pairs(tri_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Work items: flat index of pixel 0 and direction d (0 = right neighbour, 1 = down) where ids differ."""
    batch, height, width = tri_map.shape
    right = torch.zeros_like(tri_map, dtype=torch.bool)
    right[:, :, :-1] = tri_map[:, :, :-1] != tri_map[:, :, 1:]
    down = torch.zeros_like(tri_map, dtype=torch.bool)
    down[:, :-1, :] = tri_map[:, :-1, :] != tri_map[:, 1:, :]
    pr = torch.nonzero(right.reshape(-1)).squeeze(1)
    pd = torch.nonzero(down.reshape(-1)).squeeze(1)
    pixel0 = torch.cat([pr, pd])
    d = torch.cat([torch.zeros_like(pr), torch.ones_like(pd)])
    return pixel0, d


def antialias_torch(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """color [B, H, W, C], rast [B, H, W, 4], pos [B, V, 4] clip, tri [F, 3] -> antialiased [B, H, W, C]."""
    batch, height, width, chans = color.shape
    num_v = pos.shape[1]
    flat_rast = rast.detach().reshape(-1, 4)
    pixel0, d = _pairs(flat_rast[:, 3].reshape(batch, height, width))
    pixel1 = pixel0 + torch.where(d == 1, width, 1)
    z0, z1 = flat_rast[pixel0, 2], flat_rast[pixel1, 2]
    t0, t1 = flat_rast[pixel0, 3].long() - 1, flat_rast[pixel1, 3].long() - 1
    # The nearer (or only) triangle owns the edge; measure from its pixel.
    chose0 = (t0 >= 0) & ((t1 < 0) | (z0 < z1))
    tri_sel = torch.where(chose0, t0, t1)
    b = torch.div(pixel0, height * width, rounding_mode="floor")
    rem = pixel0 - b * height * width
    py = torch.div(rem, width, rounding_mode="floor") + torch.where(chose0, 0, d)
    px = rem % width + torch.where(chose0, 0, 1 - d)

    t = tri.long()
    vi = t[tri_sel]
    op = opposite_vertices(tri)[tri_sel]
    op = torch.where(op >= 0, op, vi)  # no neighbour: the wing is the triangle itself, always a silhouette
    base = (b * num_v)[:, None]
    flat_pos = pos.reshape(-1, 4)
    xs, ys, _ = screen_coords(take_rows(flat_pos, base + vi), height, width)
    oxs, oys, _ = screen_coords(take_rows(flat_pos, base + op), height, width)
    fx, fy = (px.to(pos.dtype) + 0.5)[:, None], (py.to(pos.dtype) + 0.5)[:, None]
    x, y, ox, oy = xs - fx, ys - fy, oxs - fx, oys - fy  # relative to the owning pixel's centre
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    ox0, ox1, ox2 = ox.unbind(1)
    oy0, oy1, oy2 = oy.unbind(1)

    with torch.no_grad():
        bb = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        wing = [(x1 - ox0) * (y2 - oy0) - (x2 - ox0) * (y1 - oy0),
                (x2 - ox1) * (y0 - oy1) - (x0 - ox1) * (y2 - oy1),
                (x0 - ox2) * (y1 - oy2) - (x1 - ox2) * (y0 - oy2)]
        silhouette = [_same_sign(a, bb) for a in wing]

    # Horizontal pairs are crossed by mostly vertical edges; for vertical pairs swap x and y.
    down = (d == 1)
    xs_ = [torch.where(down, yy, xx) for xx, yy in ((x0, y0), (x1, y1), (x2, y2))]
    ys_ = [torch.where(down, xx, yy) for xx, yy in ((x0, y0), (x1, y1), (x2, y2))]
    x0, x1, x2 = xs_
    y0, y1, y2 = ys_
    dxs = [x2 - x1, x0 - x2, x1 - x0]
    dys = [y2 - y1, y0 - y2, y1 - y0]
    ds = torch.where(chose0, 1.0, -1.0).to(pos.dtype)
    nums = [ds * (x1 * dys[0] - y1 * dxs[0]), ds * (x2 * dys[1] - y2 * dxs[1]), ds * (x0 * dys[2] - y0 * dxs[2])]
    ends = [(y1, y2), (y2, y0), (y0, y1)]

    with torch.no_grad():
        n_, d_, crosses = [], [], []
        for (ya, yb), num, dy in zip(ends, nums, dys):
            no_cross = _same_sign(ya, yb)  # the edge's ends lie on one side of the pixel row: no crossing
            n_.append(torch.where(no_cross, torch.full_like(num, -_F32_MAX), num))
            d_.append(torch.where(no_cross, torch.ones_like(dy), dy))
            crosses.append(~no_cross)
        g10 = _rational_gt(n_[1], n_[0], d_[1], d_[0])
        g20 = _rational_gt(n_[2], n_[0], d_[2], d_[0])
        g21 = _rational_gt(n_[2], n_[1], d_[2], d_[1])
        di = torch.where(g20 & g21, 2, torch.where(g10, 1, 0))
        usable = torch.zeros_like(silhouette[0])
        for i in range(3):
            usable |= (di == i) & crosses[i] & silhouette[i] & (d_[i].abs() >= dxs[i].abs())

    num = torch.where(di == 0, nums[0], torch.where(di == 1, nums[1], nums[2]))
    den = torch.where(di == 0, dys[0], torch.where(di == 1, dys[1], dys[2]))
    den = torch.where(usable, den, torch.ones_like(den))
    dc = torch.where(usable, num / den, torch.full_like(num, -_F32_MAX))
    keep = (usable & (dc.detach() > -_EDGE_EPS) & (dc.detach() < 1.0 + _EDGE_EPS)).nonzero().squeeze(1)
    alpha = ds[keep] * (0.5 - dc[keep].clamp(0.0, 1.0))
    p0, p1 = pixel0[keep], pixel1[keep]
    flat_color = color.reshape(-1, chans)
    target = torch.where(alpha.detach() > 0, p0, p1)
    contrib = alpha[:, None].to(color.dtype) * (take_rows(flat_color, p1) - take_rows(flat_color, p0))
    return flat_color.index_add(0, target, contrib).reshape(batch, height, width, chans)
