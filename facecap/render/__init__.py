"""Rendering: nvdiffrast's four rasteriser ops behind one interface (CUDA and torch backends)."""

from facecap.render.ops import RasterContext, antialias, interpolate, make_context, rasterize, texture

__all__ = [
    "RasterContext",
    "make_context",
    "rasterize",
    "interpolate",
    "texture",
    "antialias",
]
