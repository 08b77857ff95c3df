"""The four rasteriser ops of nvdiffrast behind one interface, with a CUDA and a plain-torch backend.

Layouts and semantics are nvdiffrast's (nvdiffrast/torch/ops.py): ``rasterize`` -> (u, v, z/w,
triangle_id + 1) with row 0 at clip y = -1, ``interpolate``, ``texture`` (uv (0, 0) at the start of the
texture's first row), ``antialias`` (Laine et al. 2020, §4). Backends:

- ``"nvdiffrast"``: ``dr.RasterizeCudaContext`` and nvdiffrast.torch's ops (CUDA, float32).
- ``"torch"``: :mod:`facecap.render.torch_raster`, a vectorised reference on any torch device and dtype.

``interpolate``, ``texture`` and ``antialias`` take no context in nvdiffrast; here they take an optional
keyword ``ctx`` to pin the backend, and otherwise follow the tensors: nvdiffrast for CUDA tensors when it
is installed, torch otherwise.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import torch

from facecap.checks import check_shape
from facecap.errors import FacecapError, ShapeError
from facecap.render import nvdiffrast_backend as nv
from facecap.render.torch_raster import antialias_torch, interpolate_torch, rasterize_torch, texture_torch

__all__ = ["RasterContext", "make_context", "rasterize", "interpolate", "texture", "antialias"]

log = logging.getLogger(__name__)

BackendName = Literal["auto", "torch", "nvdiffrast"]
FILTER_MODES = ("linear", "nearest")
BOUNDARY_MODES = ("clamp", "wrap")


@dataclass
class RasterContext:
    """Which backend runs the ops, on which device; ``native`` is the nvdiffrast context (None for torch)."""

    backend: Literal["torch", "nvdiffrast"]
    device: torch.device
    native: Any = None
    topology: dict = field(default_factory=dict, repr=False)  # nvdiffrast antialias edge hashes per tri tensor


def make_context(backend: BackendName = "auto", device: torch.device | str | None = None) -> RasterContext:
    """Create the rasteriser context; reuse it across calls (nvdiffrast's context is costly to create).

    "auto" picks nvdiffrast when it imports and the device is CUDA (device None means CUDA when
    available), else torch. "nvdiffrast" raises FacecapError when CUDA or the package is missing.
    """
    if backend not in ("auto", "torch", "nvdiffrast"):
        raise FacecapError(f"backend must be 'auto', 'torch' or 'nvdiffrast', got {backend!r}")
    dev = torch.device(device) if device is not None else None
    if backend == "auto":
        wants_cuda = dev.type == "cuda" if dev is not None else torch.cuda.is_available()
        backend = "nvdiffrast" if wants_cuda and nv.available() else "torch"
        log.info("rasteriser backend: %s", backend)
    if backend == "torch":
        return RasterContext("torch", dev if dev is not None else torch.device("cpu"))
    if dev is None:
        dev = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if dev.type != "cuda":
        raise FacecapError(f"{nv.NEEDS_MESSAGE} (device {dev} is not CUDA)")
    return RasterContext("nvdiffrast", dev, nv.create_context(dev))


def _backend(ctx: RasterContext | None, like: torch.Tensor) -> str:
    if ctx is not None:
        return ctx.backend
    return "nvdiffrast" if like.device.type == "cuda" and nv.available() else "torch"


def _check_tri(tri: torch.Tensor) -> int:
    if not isinstance(tri, torch.Tensor) or tri.dtype not in (torch.int32, torch.int64):
        raise FacecapError("tri must be an int32 (or int64) tensor of shape [F, 3]")
    return check_shape(tri, "F 3", "tri")["F"]


def _check_rast(rast: torch.Tensor) -> dict[str, int]:
    return check_shape(rast, "B H W 4", "rast")


def rasterize(ctx: RasterContext, pos: torch.Tensor, tri: torch.Tensor, resolution: Sequence[int],
              grad_db: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterise triangles (nvdiffrast ``rasterize``, instanced mode).

    Args:
        ctx: from :func:`make_context`.
        pos: [B, V, 4] float clip-space positions (float32 on nvdiffrast).
        tri: [F, 3] int32 vertex indices.
        resolution: (H, W) pixels.
        grad_db: let gradients of rast_db reach pos.

    Returns:
        rast [B, H, W, 4] = (u, v, z/w, triangle_id + 1), all 0 where no triangle covers the pixel centre;
        pixel (x, y) is centred at clip ((2x + 1) / W - 1, (2y + 1) / H - 1) (row 0 is clip y = -1);
        (u, v) are perspective-correct barycentrics of vertices 1 and 2; the nearest z/w in [-1, 1] wins.
        rast_db [B, H, W, 4] = (du/dX, du/dY, dv/dX, dv/dY) per pixel.
        Gradients flow to pos through (u, v) (and rast_db when grad_db).
    """
    if not isinstance(pos, torch.Tensor) or not pos.is_floating_point():
        raise FacecapError("pos must be a floating-point tensor of shape [B, V, 4]")
    check_shape(pos, "B V 4", "pos")
    _check_tri(tri)
    resolution = tuple(int(r) for r in resolution)
    if len(resolution) != 2 or min(resolution) <= 0:
        raise ShapeError(f"resolution must be (H, W) with positive sizes, got {resolution}")
    if ctx.backend == "nvdiffrast":
        return nv.rasterize_nv(ctx.native, pos, tri, resolution, grad_db)
    return rasterize_torch(pos, tri.to(pos.device), resolution, grad_db)


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, rast_db: torch.Tensor | None = None,
                diff_attrs: Sequence[int] | Literal["all"] | None = None, *, ctx: RasterContext | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes (nvdiffrast ``interpolate``).

    Args:
        attr: [B, V, C] or [V, C] float; a batch of 1 broadcasts.
        rast: [B, H, W, 4] from :func:`rasterize`.
        tri: [F, 3] int32, as rasterised.
        rast_db, diff_attrs: screen derivatives wanted for these attribute indices ("all" for every one).

    Returns:
        out [B, H, W, C] (0 where empty) and out_da [B, H, W, 2 * len(diff_attrs)] = (dA/dX, dA/dY) per
        selected attribute, or an empty [B, H, W, 0] without diff_attrs.
    """
    dims = _check_rast(rast)
    _check_tri(tri)
    if attr.dim() not in (2, 3):
        raise ShapeError(f"attr must have shape [B, V, C] or [V, C], got {list(attr.shape)}")
    if attr.dim() == 3 and attr.shape[0] not in (1, dims["B"]):
        raise ShapeError(f"attr batch {attr.shape[0]} must be 1 or match rast batch {dims['B']}")
    chans = attr.shape[-1]
    if diff_attrs is not None:
        if rast_db is None:
            raise FacecapError("diff_attrs needs rast_db (the second output of rasterize)")
        check_shape(rast_db, f"{dims['B']} {dims['H']} {dims['W']} 4", "rast_db")
        diff_attrs = list(range(chans)) if diff_attrs == "all" else [int(i) for i in diff_attrs]
        if any(i < 0 or i >= chans for i in diff_attrs):
            raise FacecapError(f"diff_attrs {diff_attrs} must index attributes 0..{chans - 1}")
    if _backend(ctx, rast) == "nvdiffrast":
        return nv.interpolate_nv(attr, rast, tri, rast_db, diff_attrs)
    return interpolate_torch(attr, rast, tri.to(rast.device), rast_db, diff_attrs)


def texture(tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None = None,
            filter_mode: Literal["linear", "nearest"] = "linear",
            boundary_mode: Literal["clamp", "wrap"] = "clamp", *, ctx: RasterContext | None = None) -> torch.Tensor:
    """Sample a texture (nvdiffrast ``texture``, no mipmaps).

    Args:
        tex: [B, Ht, Wt, C] float (batch 1 broadcasts); row 0 of tex is v = 0.
        uv: [B, H, W, 2] in [0, 1]; uv (0, 0) is the start of the texture's first row; bilinear
            filtering samples texel-space (u Wt - 0.5, v Ht - 0.5).
        uv_da: [B, H, W, 4] accepted for nvdiffrast compatibility; unused by these two filter modes.
        filter_mode: "linear" (bilinear) or "nearest".
        boundary_mode: "clamp" to the edge texel centres or "wrap" (fractional part of uv).

    Returns:
        [B, H, W, C]; differentiable w.r.t. tex, and uv in linear mode.
    """
    dims = check_shape(uv, "B H W 2", "uv")
    tdims = check_shape(tex, "Bt Ht Wt C", "tex")
    if tdims["Bt"] not in (1, dims["B"]):
        raise ShapeError(f"tex batch {tdims['Bt']} must be 1 or match uv batch {dims['B']}")
    if filter_mode not in FILTER_MODES:
        raise FacecapError(f"filter_mode must be one of {FILTER_MODES}, got {filter_mode!r} "
                           "(mipmaps are not supported)")
    if boundary_mode not in BOUNDARY_MODES:
        raise FacecapError(f"boundary_mode must be one of {BOUNDARY_MODES}, got {boundary_mode!r}")
    if uv_da is not None:
        check_shape(uv_da, f"{dims['B']} {dims['H']} {dims['W']} 4", "uv_da")
    if _backend(ctx, uv) == "nvdiffrast":
        return nv.texture_nv(tex, uv, uv_da, filter_mode, boundary_mode)
    return texture_torch(tex.to(uv.device), uv, filter_mode, boundary_mode)


def antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor, *,
              ctx: RasterContext | None = None) -> torch.Tensor:
    """Analytic antialiasing of silhouette edges (nvdiffrast ``antialias``; Laine et al. 2020, §4).

    Args:
        color: [B, H, W, C] float image to antialias, usually from interpolate/texture.
        rast: [B, H, W, 4] from :func:`rasterize` with the same pos and tri.
        pos: [B, V, 4] clip-space positions, as rasterised.
        tri: [F, 3] int32.

    Returns:
        [B, H, W, C]; where a silhouette edge crosses between two neighbouring pixels their colours are
        blended by the edge's coverage, which gives gradients w.r.t. pos as well as color.
    """
    dims = check_shape(color, "B H W C", "color")
    check_shape(rast, f"{dims['B']} {dims['H']} {dims['W']} 4", "rast")
    check_shape(pos, f"{dims['B']} V 4", "pos")
    _check_tri(tri)
    if _backend(ctx, color) == "nvdiffrast":
        topology = None
        if ctx is not None:
            key = (tri.data_ptr(), tuple(tri.shape), tri._version)
            if key not in ctx.topology:
                ctx.topology.clear()
                ctx.topology[key] = nv.topology_hash_nv(tri)
            topology = ctx.topology[key]
        return nv.antialias_nv(color, rast, pos, tri, topology)
    return antialias_torch(color, rast, pos.to(color.device), tri.to(color.device))
