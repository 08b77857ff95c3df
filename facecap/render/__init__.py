"""Rendering: nvdiffrast's four rasteriser ops behind one interface (CUDA and torch backends), shading,
and the batched multi-view renderer."""

from facecap.render.ops import RasterContext, antialias, interpolate, make_context, rasterize, texture
from facecap.render.renderer import RenderResult, lens_warp_for, render_attribute, render_views
from facecap.render.shading import sh_basis, sh_from_lights, sh_irradiance, vertex_normals

__all__ = ["RasterContext", "make_context", "rasterize", "interpolate", "texture", "antialias",
           "RenderResult", "render_views", "render_attribute", "lens_warp_for", "vertex_normals", "sh_basis",
           "sh_irradiance", "sh_from_lights"]
