"""Multi-view renderer: frames x cameras in one rasteriser batch, OpenCV pixel layout, lens distortion.

``render_views`` draws B frames of a posed mesh into C calibrated cameras: the B*C views share one
rasteriser call (row ``b * C + c``), then come back as [B, C, H, W, ...]. Pixel conventions live
in :mod:`facecap.camera.torch_camera` (rendered row j is OpenCV row j, so nothing is flipped here);
lens distortion is a fixed remap after rasterisation (:mod:`facecap.camera.undistort`), so outputs
line up with raw frames and with cv2.projectPoints. Shading is :mod:`facecap.render.shading`.
Everything is differentiable w.r.t. vertices (through the rasteriser's barycentrics and the
antialias op's silhouette gradients), texture, SH coefficients, gains and bias.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import torch

from facecap.camera.torch_camera import CameraTensors, canvas_size, near_far_from_points, world_to_clip
from facecap.camera.undistort import LensWarp
from facecap.checks import check_shape
from facecap.errors import ShapeError
from facecap.render import ops
from facecap.render.shading import (apply_camera_response, atlas_uv, composite, sh_irradiance, texture_atlas,
                                    vertex_normals)

__all__ = ["RenderResult", "render_views", "render_attribute", "lens_warp_for"]

log = logging.getLogger(__name__)

LensOption = LensWarp | Literal["auto", "none"]
_LENS_CACHE_SIZE = 8
_lens_cache: "OrderedDict[tuple, LensWarp | None]" = OrderedDict()


@dataclass(frozen=True)
class RenderResult:
    """Rendered views, OpenCV layout (row 0 is the top, pixel centres at integers).

    Attributes:
        image: [B, C, H, W, 3] colour, background composited in.
        mask: [B, C, H, W] face coverage in [0, 1] (antialiased at silhouettes), 0 = background.
        depth: [B, C, H, W] camera-frame z of the visible surface (world units), 0 where empty;
            None unless asked for. Not differentiable.
    """

    image: torch.Tensor
    mask: torch.Tensor
    depth: torch.Tensor | None = None


@dataclass(frozen=True)
class _Raster:
    """One rasterised batch of B*C views on the (possibly padded) canvas."""

    rast: torch.Tensor        # [B*C, Hc, Wc, 4]
    pos: torch.Tensor         # [B*C, V, 4] clip space
    tri: torch.Tensor         # [F', 3] int32 drawn triangles
    lens: LensWarp | None
    B: int
    C: int


def lens_warp_for(cams: CameraTensors, scale: float = 1.0, lens: LensOption = "auto") -> LensWarp | None:
    """The distortion remap to use: ``"auto"`` builds (and caches) one when any camera has distortion,
    ``"none"`` renders ideal pinhole images, a :class:`LensWarp` is used as given (its scale must match)."""
    if isinstance(lens, LensWarp):
        if abs(lens.scale - scale) > 1e-12:
            raise ValueError(f"lens warp was made for scale {lens.scale}, rendering at scale {scale}")
        return lens
    if lens == "none" or not bool((cams.dist != 0).any()):
        return None
    if lens != "auto":
        raise ValueError(f"lens must be 'auto', 'none' or a LensWarp, got {lens!r}")
    key = (cams.K.detach().cpu().numpy().tobytes(), cams.dist.detach().cpu().numpy().tobytes(),
           cams.image_sizes.cpu().numpy().tobytes(), float(scale), str(cams.device), cams.dtype)
    if key not in _lens_cache:
        _lens_cache[key] = LensWarp.from_cameras(cams, scale)
        if len(_lens_cache) > _LENS_CACHE_SIZE:
            _lens_cache.popitem(last=False)
    _lens_cache.move_to_end(key)
    return _lens_cache[key]


def _as_frames(x: torch.Tensor, B: int, spec: str, name: str) -> torch.Tensor:
    """[B or 1, ...] -> [B, ...] (broadcast a shared value over frames)."""
    check_shape(x, spec, name)
    if x.shape[0] not in (1, B):
        raise ShapeError(f"{name} must have {B} or 1 rows (one per frame or shared), got {x.shape[0]}")
    return x.expand(B, *x.shape[1:])


def _rasterize_views(ctx: Any, verts_world: torch.Tensor, faces: torch.Tensor, cams: CameraTensors, scale: float,
                     faces_subset: torch.Tensor | None, lens: LensOption,
                     near_far: tuple[torch.Tensor | float, torch.Tensor | float] | None) -> _Raster:
    B = check_shape(verts_world, "B V 3", "verts_world")["B"]
    check_shape(faces, "F 3", "faces")
    C = len(cams)
    warp = lens_warp_for(cams, scale, lens)
    pad = warp.pad if warp is not None else (0, 0)
    near, far = near_far if near_far is not None else near_far_from_points(verts_world, cams)
    clip = world_to_clip(verts_world, cams, near, far, scale=scale, pad=pad)      # [B, C, V, 4]
    pos = clip.reshape(B * C, *clip.shape[2:]).contiguous()
    tri = faces if faces_subset is None else faces[faces_subset.long()]
    tri = tri.to(device=pos.device, dtype=torch.int32).contiguous()
    W, H = canvas_size(cams, scale, pad)
    rast, _ = ops.rasterize(ctx, pos, tri, (H, W))
    return _Raster(rast, pos, tri, warp, B, C)


def _finish(raster: _Raster, channels: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Canvas channels [B*C, Hc, Wc, k] -> distorted output [B, C, H, W, k]."""
    out = channels if raster.lens is None else raster.lens.apply(channels, mode=mode)
    return out.reshape(raster.B, raster.C, *out.shape[1:])


def render_views(ctx: Any, verts_world: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, uv_faces: torch.Tensor,
                 texture: torch.Tensor, sh: torch.Tensor, cams: CameraTensors, gains: torch.Tensor,
                 bias: torch.Tensor, background: torch.Tensor, scale: float = 1.0,
                 faces_subset: torch.Tensor | None = None, *, lens: LensOption = "auto",
                 near_far: tuple[torch.Tensor | float, torch.Tensor | float] | None = None,
                 with_depth: bool = False, antialiased: bool = True) -> RenderResult:
    """Render B frames into C cameras with textured, SH-lit Lambertian shading.

    Args:
        ctx: rasteriser context from :func:`facecap.render.ops.make_context`.
        verts_world: [B, V, 3] posed mesh in world units (the calibration's).
        faces: [F, 3] int position triangles; uv: [U, 2] texture coordinates (v up, UDIM u);
            uv_faces: [F, 3] int UV triangles, row f textures position triangle f.
        texture: [T, Ht, Wt, 3] albedo in [0, 1], row 0 = v = 1 (one tile per unit of u).
        sh: [B or 1, 9, 3] irradiance SH coefficients in the world frame (see shading).
        cams: C cameras sharing one image size (W, H).
        gains, bias: [C, 3] per-camera colour response, applied to the face (not the background).
        background: [3] colour, or [C, H', W', 3] / [B, C, H', W', 3] images at the output size.
        scale: render at ``scale`` times the camera resolution (H' = round(H * scale)).
        faces_subset: [F'] indices of the triangles to draw (e.g. ``rig.opaque_faces()``), or None.
        lens: ``"auto"`` (distort like the cameras), ``"none"`` (ideal pinhole) or a prepared LensWarp.
        near_far: clip planes (floats or [C]); default from the mesh's depth range with margins.
        with_depth: also return camera-frame depth.
        antialiased: run the antialias op (silhouette gradients w.r.t. vertices need it).
    Returns:
        RenderResult with image [B, C, H', W', 3], mask [B, C, H', W'], depth or None.
    """
    B = check_shape(verts_world, "B V 3", "verts_world")["B"]
    F_ = check_shape(faces, "F 3", "faces")["F"]
    check_shape(uv, "U 2", "uv")
    check_shape(uv_faces, f"{F_} 3", "uv_faces")
    check_shape(texture, "T H W 3", "texture")
    sh_b = _as_frames(sh, B, "_ 9 3", "sh")
    raster = _rasterize_views(ctx, verts_world, faces, cams, scale, faces_subset, lens, near_far)
    C, rast, tri = raster.C, raster.rast, raster.tri
    uv_tri = uv_faces if faces_subset is None else uv_faces[faces_subset.long()]
    corner_uv = atlas_uv(uv.to(raster.pos.dtype), uv_tri, tuple(texture.shape[:3]))
    corner_tri = torch.arange(3 * len(tri), device=tri.device, dtype=torch.int32).reshape(-1, 3)
    pix_uv, _ = ops.interpolate(corner_uv, rast, corner_tri, ctx=ctx)
    atlas = texture_atlas(texture.to(raster.pos.dtype))
    albedo = ops.texture(atlas, pix_uv.contiguous(), filter_mode="linear", boundary_mode="clamp", ctx=ctx)
    normals = vertex_normals(verts_world, faces)                                  # [B, V, 3] world
    pix_n, _ = ops.interpolate(normals.repeat_interleave(C, dim=0), rast, tri, ctx=ctx)
    pix_n = pix_n / torch.sqrt((pix_n * pix_n).sum(-1, keepdim=True) + 1e-20)
    irradiance = sh_irradiance(pix_n, sh_b.repeat_interleave(C, dim=0))
    colour = (albedo * irradiance).reshape(B, C, *albedo.shape[1:])
    colour = apply_camera_response(colour, gains, bias).reshape(B * C, *albedo.shape[1:])
    covered = (rast[..., 3:] > 0).to(colour.dtype)
    layers = torch.cat([colour * covered, covered], -1)
    if antialiased:
        layers = ops.antialias(layers.contiguous(), rast, raster.pos, tri, ctx=ctx)
    if with_depth:
        depth_pix, _ = ops.interpolate(raster.pos[..., 3:].detach().contiguous(), rast, tri, ctx=ctx)
        depth = _finish(raster, (depth_pix * covered).detach(), mode="nearest")[..., 0]
    out = _finish(raster, layers)
    alpha = out[..., 3].clamp(0, 1)
    image = composite(out[..., :3], alpha, background.to(out.dtype))
    return RenderResult(image=image, mask=alpha, depth=depth if with_depth else None)


def render_attribute(ctx: Any, verts_world: torch.Tensor, faces: torch.Tensor, attr: torch.Tensor,
                     cams: CameraTensors, scale: float = 1.0, faces_subset: torch.Tensor | None = None, *,
                     lens: LensOption = "auto",
                     near_far: tuple[torch.Tensor | float, torch.Tensor | float] | None = None,
                     antialiased: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-vertex attributes interpolated over the visible surface of every view (e.g. a region mask).

    Args:
        verts_world: [B, V, 3]; faces: [F, 3]; attr: [V, A] shared or [B, V, A] per frame.
        cams, scale, faces_subset, lens, near_far: as :func:`render_views`.
        antialiased: blend silhouettes (for losses that need edge gradients); off by default so values
            stay exact interpolations.
    Returns:
        (values [B, C, H, W, A] premultiplied by coverage, so 0 outside the face and blended at
        silhouette pixels; coverage [B, C, H, W] in [0, 1]).
    """
    B = check_shape(verts_world, "B V 3", "verts_world")["B"]
    V = verts_world.shape[1]
    attr_b = _as_frames(attr[None] if attr.dim() == 2 else attr, B, f"_ {V} A", "attr")
    raster = _rasterize_views(ctx, verts_world, faces, cams, scale, faces_subset, lens, near_far)
    values, _ = ops.interpolate(attr_b.repeat_interleave(raster.C, dim=0).to(raster.pos.dtype), raster.rast,
                                raster.tri, ctx=ctx)
    covered = (raster.rast[..., 3:] > 0).to(values.dtype)
    layers = torch.cat([values * covered, covered], -1)
    if antialiased:
        layers = ops.antialias(layers.contiguous(), raster.rast, raster.pos, raster.tri, ctx=ctx)
    out = _finish(raster, layers)
    return out[..., :-1], out[..., -1].clamp(0, 1)
