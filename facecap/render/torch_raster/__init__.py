"""Plain-torch reference implementations of nvdiffrast's four ops (any device, float32 or float64)."""

from facecap.render.torch_raster.antialias import antialias_torch, opposite_vertices
from facecap.render.torch_raster.interpolate import interpolate_torch
from facecap.render.torch_raster.rasterize import rasterize_torch
from facecap.render.torch_raster.texture import texture_torch
from facecap.render.torch_raster.zbuffer import visible_triangles

__all__ = ["rasterize_torch", "visible_triangles", "interpolate_torch", "texture_torch", "antialias_torch",
           "opposite_vertices"]
