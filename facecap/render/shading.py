"""Shading for the analysis-by-synthesis renderer: normals, SH lighting, UDIM albedo, camera response.

Lambertian model per pixel: ``colour = gain_c * albedo(uv) * E(n) + bias_c``, with ``E`` the
irradiance of order-2 real spherical harmonics (Ramamoorthi & Hanrahan 2001, "An efficient
representation for irradiance environment maps"): ``E(n) = sum_k sh[k] * Y_k(n)``. The 9 coefficients
per colour channel describe irradiance directly (the cosine lobe's A_l is folded in), so a plain
ambient level ``a`` is ``sh[0] = a / Y_00``. Everything is differentiable and vectorised.
"""

import math

import torch
import torch.nn.functional as F

from facecap.checks import check_shape

__all__ = ["vertex_normals", "sh_basis", "sh_irradiance", "sh_from_lights", "texture_atlas", "atlas_uv",
           "apply_camera_response", "composite", "SH_COEFFS", "SH_BASIS_CONSTANTS"]

SH_COEFFS = 9  # order 2: l = 0, 1, 2
# Real SH normalisation constants (Sloan, "Stupid Spherical Harmonics Tricks", 2008, appendix A2).
SH_C0 = 0.5 / math.sqrt(math.pi)                  # 0.282095  Y00
SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))          # 0.488603  Y1m
SH_C2 = 0.5 * math.sqrt(15.0 / math.pi)           # 1.092548  Y2-2, Y2-1, Y21
SH_C3 = 0.25 * math.sqrt(5.0 / math.pi)           # 0.315392  Y20 (times 3z^2 - 1)
SH_C4 = 0.25 * math.sqrt(15.0 / math.pi)          # 0.546274  Y22 (times x^2 - y^2)
SH_BASIS_CONSTANTS = (SH_C0, SH_C1, SH_C2, SH_C3, SH_C4)
# Clamped-cosine convolution per band, A_0, A_1, A_2 (Ramamoorthi & Hanrahan 2001, eq. 8).
SH_COSINE_LOBE = (math.pi, 2.0 * math.pi / 3.0, math.pi / 4.0)
_BAND_OF_COEFF = (0, 1, 1, 1, 2, 2, 2, 2, 2)
# Added under the square root when normalising, so degenerate normals stay finite (and differentiable).
NORMAL_EPS = 1e-20


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Smooth unit vertex normals: the area-weighted sum of adjacent face normals.

    Args:
        verts: [B, V, 3] positions (any frame; the normals are in the same frame).
        faces: [F, 3] int triangles, counter-clockwise seen from outside (normals point out).
    Returns:
        [B, V, 3] unit normals; a vertex in no triangle gets (0, 0, 0).
    """
    check_shape(verts, "B V 3", "verts")
    check_shape(faces, "F 3", "faces")
    faces = faces.long()
    v0, v1, v2 = (verts[:, faces[:, i]] for i in range(3))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)            # length = 2 * area: area weighting for free
    # One scatter of contiguous [F, B 3] rows into the vertices, not three batched index_adds along dim 1.
    B, V = verts.shape[:2]
    rows = face_n.transpose(0, 1).reshape(-1, B * 3)
    summed = verts.new_zeros(V, B * 3).index_add(0, faces.T.reshape(-1), rows.repeat(3, 1))
    summed = summed.view(V, B, 3).transpose(0, 1)
    return summed / torch.sqrt((summed * summed).sum(-1, keepdim=True) + NORMAL_EPS)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """[..., 3] unit vectors -> [..., 9] real SH basis values, order (l, m) = (0,0), (1,-1), (1,0), (1,1),
    (2,-2), (2,-1), (2,0), (2,1), (2,2) with Y1 = C1 * (y, z, x)."""
    x, y, z = normals.unbind(-1)
    return torch.stack([torch.full_like(x, SH_C0), SH_C1 * y, SH_C1 * z, SH_C1 * x,
                        SH_C2 * x * y, SH_C2 * y * z, SH_C3 * (3 * z * z - 1), SH_C2 * x * z,
                        SH_C4 * (x * x - y * y)], -1)


def sh_irradiance(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Irradiance of SH lighting: normals [B, ..., 3] and sh [B or 1, 9, 3] -> [B, ..., 3] (per RGB)."""
    check_shape(sh, f"_ {SH_COEFFS} 3", "sh")
    basis = sh_basis(normals)
    flat = basis.reshape(basis.shape[0], -1, SH_COEFFS)
    return (flat @ sh).reshape(*normals.shape[:-1], 3)


def sh_from_lights(ambient: torch.Tensor, directions: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """SH coefficients [9, 3] approximating ``ambient + sum_l colour_l * max(0, n . d_l)``.

    Args:
        ambient: [3] RGB ambient irradiance. directions: [L, 3] unit vectors towards the lights
            (world frame). colours: [L, 3] RGB intensities.
    A directional light projects onto band l as ``A_l * Y_lm(d)`` (Ramamoorthi & Hanrahan).
    """
    check_shape(ambient, "3", "ambient")
    L = check_shape(directions, "L 3", "directions")["L"]
    check_shape(colours, f"{L} 3", "colours")
    d = directions / directions.norm(dim=-1, keepdim=True)
    lobe = torch.tensor([SH_COSINE_LOBE[b] for b in _BAND_OF_COEFF], dtype=d.dtype, device=d.device)
    sh = (sh_basis(d) * lobe).T @ colours                     # [9, 3]
    return sh + F.pad((ambient / SH_C0)[None], (0, 0, 0, SH_COEFFS - 1))


def texture_atlas(texture: torch.Tensor) -> torch.Tensor:
    """UDIM tiles side by side, each padded by one replicated texel so bilinear taps never cross tiles.

    Args:
        texture: [T, H, W, 3] albedo per tile, row 0 is v = 1 (docs/formats.md §3), any float range.
    Returns:
        [1, H + 2, T * (W + 2), 3] atlas for the rasteriser's texture op (see :func:`atlas_uv`).
    """
    dims = check_shape(texture, "T H W 3", "texture")
    T, H, W = dims["T"], dims["H"], dims["W"]
    padded = F.pad(texture.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")   # [T, 3, H+2, W+2]
    return padded.permute(2, 0, 3, 1).reshape(1, H + 2, T * (W + 2), 3)


def atlas_uv(uv: torch.Tensor, tri_uv: torch.Tensor, tile_shape: tuple[int, int, int]) -> torch.Tensor:
    """Per-corner texture-op coordinates of every triangle in the :func:`texture_atlas` layout.

    Args:
        uv: [U, 2] rig texture coordinates (v up; u in [k, k+1) is tile k).
        tri_uv: [F, 3] int indices into ``uv``, one row per drawn triangle.
        tile_shape: (T, H, W) of the texture tiles.
    Returns:
        [F * 3, 2] coordinates in [0, 1] for the texture op, whose (0, 0) is the corner of texel
        row 0, column 0; interpolate them with triangles ``arange(3F).reshape(F, 3)``. A triangle's
        tile is the floor of its mean u (clamped to the tiles), so shared seam vertices map to
        the correct side of each triangle.
    """
    T, H, W = tile_shape
    corners = uv[tri_uv.long()]                                # [F, 3, 2]
    tile = torch.floor(corners[..., 0].mean(-1, keepdim=True)).clamp(0, T - 1)
    u_local = (corners[..., 0] - tile).clamp(0, 1)
    # The texture's row 0 is v = 1 (top), the texture op's row 0 is its coordinate 0: flip v.
    v_local = (1.0 - corners[..., 1]).clamp(0, 1)
    u_atlas = (tile * (W + 2) + 1 + u_local * W) / (T * (W + 2))
    v_atlas = (1 + v_local * H) / (H + 2)
    return torch.stack([u_atlas, v_atlas], -1).reshape(-1, 2)


def apply_camera_response(colour: torch.Tensor, gains: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-camera affine colour response: colour [B, C, ..., 3], gains and bias [C, 3] -> same shape."""
    C = colour.shape[1]
    check_shape(gains, f"{C} 3", "gains")
    check_shape(bias, f"{C} 3", "bias")
    extra = (1,) * (colour.dim() - 3)
    return colour * gains.reshape(1, C, *extra, 3) + bias.reshape(1, C, *extra, 3)


def composite(premultiplied: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Over-compositing: premultiplied [B, C, H, W, 3], alpha [B, C, H, W] over background -> [B, C, H, W, 3].

    ``background``: [3] constant colour, [C, H, W, 3] one image per camera, or [B, C, H, W, 3].
    """
    B, C, H, W, _ = premultiplied.shape
    if background.dim() == 1:
        check_shape(background, "3", "background")
        bg = background.reshape(1, 1, 1, 1, 3)
    elif background.dim() == 4:
        check_shape(background, f"{C} {H} {W} 3", "background")
        bg = background[None]
    else:
        check_shape(background, f"{B} {C} {H} {W} 3", "background")
        bg = background
    return premultiplied + (1.0 - alpha[..., None]) * bg
