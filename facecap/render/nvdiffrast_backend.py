"""Thin dispatch to nvdiffrast.torch (CUDA), imported lazily so that CPU installs never need it.

nvdiffrast wants float32, contiguous CUDA tensors and int32 triangles (nvdiffrast/torch/ops.py); the
callers in :mod:`facecap.render.ops` have checked shapes, this module only adapts types.
"""

import functools
from typing import Any

import torch

from facecap.errors import FacecapError

__all__ = ["available", "import_nvdiffrast", "create_context", "rasterize_nv", "interpolate_nv", "texture_nv",
           "antialias_nv", "topology_hash_nv", "NEEDS_MESSAGE"]

NEEDS_MESSAGE = "nvdiffrast backend needs CUDA and the nvdiffrast package: pip install .[cuda]"


@functools.lru_cache(maxsize=1)
def _module() -> Any:
    try:
        import nvdiffrast.torch as dr
    except ImportError:
        return None
    return dr


def available() -> bool:
    """True when CUDA is up and ``nvdiffrast.torch`` imports."""
    return torch.cuda.is_available() and _module() is not None


def import_nvdiffrast() -> Any:
    """``nvdiffrast.torch``, or a FacecapError saying how to install it."""
    if not available():
        raise FacecapError(NEEDS_MESSAGE)
    return _module()


def _f32(x: torch.Tensor) -> torch.Tensor:
    if x.device.type != "cuda":
        raise FacecapError(f"{NEEDS_MESSAGE} (got a tensor on {x.device})")
    return x.to(torch.float32).contiguous()


def create_context(device: torch.device) -> Any:
    """A ``dr.RasterizeCudaContext`` on ``device`` (CUDA)."""
    return import_nvdiffrast().RasterizeCudaContext(device=device)


def rasterize_nv(native: Any, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int],
                 grad_db: bool) -> tuple[torch.Tensor, torch.Tensor]:
    dr = import_nvdiffrast()
    return dr.rasterize(native, _f32(pos), tri.to(torch.int32).contiguous(), resolution, grad_db=grad_db)


def interpolate_nv(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, rast_db: torch.Tensor | None,
                   diff_attrs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    dr = import_nvdiffrast()
    if attr.dim() == 2:
        attr = attr[None]  # instanced mode with a broadcast batch, like the torch backend
    return dr.interpolate(_f32(attr), _f32(rast), tri.to(torch.int32).contiguous(),
                          rast_db=None if rast_db is None else _f32(rast_db), diff_attrs=diff_attrs)


def texture_nv(tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None, filter_mode: str,
               boundary_mode: str) -> torch.Tensor:
    dr = import_nvdiffrast()
    return dr.texture(_f32(tex), _f32(uv), uv_da=None if uv_da is None else _f32(uv_da),
                      filter_mode=filter_mode, boundary_mode=boundary_mode)


def topology_hash_nv(tri: torch.Tensor) -> Any:
    """nvdiffrast's edge hash for antialias; build once per mesh topology and reuse."""
    return import_nvdiffrast().antialias_construct_topology_hash(tri.to(torch.int32).contiguous())


def antialias_nv(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                 topology_hash: Any = None) -> torch.Tensor:
    dr = import_nvdiffrast()
    return dr.antialias(_f32(color), _f32(rast), _f32(pos), tri.to(torch.int32).contiguous(),
                        topology_hash=topology_hash)
