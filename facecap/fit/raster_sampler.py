"""The raster sampler: the photometric term read at surface points, each view's visibility from a rasterisation.

The points are the sampled vertices and the points laid between them (:mod:`facecap.fit.surface_points`).
Each Gauss-Newton call (one image scale of a batch) rasterises the posed mesh in every view with
:mod:`facecap.render`'s ops (nvdiffrast on CUDA, the torch backend elsewhere), the sampled surface and every
other opaque triangle drawn: the eyeballs, lashes and the mouth's inside hide the skin behind them, although
the photometric term does not model their colours. A point is hidden in a view when the triangle in front at
its raster pixel lies in front of it along its ray: that triangle's plane, extended to the point's ray, meets
the ray more than ``DEPTH_TOLERANCE_PX`` raster pixels' worth of depth before the point. The tolerance covers
the surface's curvature within a raster pixel, where the triangle in front at the pixel's centre is a
neighbour of the point's own; occluders stand off the skin by more. A point must also face the camera
(:data:`facecap.fit.appearance.MIN_FACING_COSINE`) and project inside the frame, as the vertex sampler's.

Everything after visibility is the vertex sampler's (:mod:`facecap.fit.linearise`): each point is a row of the
model whose rig offsets are the barycentric combination of its triangle's corners', so its position, normal and
Jacobian are exactly the mesh's there; the albedo per point, the appearance solve, the variable projection and
the normal matrix's subset of rows are unchanged. :func:`raster_model` turns a :class:`FitModel` of vertex
samples into one of surface points.
"""

import logging
from dataclasses import dataclass, fields

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors, project_points, scaled_intrinsics, world_to_camera
from facecap.fit.appearance import MIN_FACING_COSINE, facing_cosine, inside_image, photometric_faces
from facecap.fit.config import FitConfig
from facecap.fit.problem import FitModel, FrameParams, hessian_subset
from facecap.fit.surface_points import lay_surface_points
from facecap.fit.surface_samples import rasterise_front
from facecap.render.ops import RasterContext, make_context
from facecap.render.shading import vertex_normals
from facecap.rig.evaluate import TorchRig
from facecap.rig.model import Rig

__all__ = ["photometric_model", "RasterFitModel", "raster_model", "raster_visibility", "DEPTH_TOLERANCE_PX"]

log = logging.getLogger(__name__)

# A point is hidden when the front surface at its raster pixel lies this many raster pixels' worth of depth (a
# pixel's width at the point's distance) in front of it along its ray.
DEPTH_TOLERANCE_PX = 0.5


def photometric_model(rig: Rig, samples: np.ndarray, cams: CameraTensors, config: FitConfig,
                      start: FrameParams) -> FitModel:
    """The model the photometric stages fit, by ``config.sampler``: ``rig`` (as tracked, in the cameras' units) read
    at its vertices ``samples``, or at surface points laid ``config.sample_spacing_px`` apart at the face's
    resolution in the poses ``start`` (the landmark initialisation's, so that a resumed fit lays the same points)."""
    model = FitModel.build(rig, cams, samples, cams.device)
    if config.sampler == "vertex":
        return model
    spacing = config.sample_spacing_px / model.pixels_per_unit(start.R, start.t)
    model = raster_model(model, rig, config.exclude_materials, spacing, config.raster_scale,
                         make_context("auto", cams.device))
    log.info("raster sampler: %d surface points (%d vertices), visibility rasterised at scale %g",
             len(model.samples), len(samples), config.raster_scale)
    return model


def _at_points(rig: TorchRig, corners: torch.Tensor, weights: torch.Tensor) -> TorchRig:
    """The rig at points [n] that are combinations of its rows ``corners`` [n, 3] with ``weights`` [n, 3]: each
    offset the same combination of the corners' (the rig is linear in them, so the points move with the mesh)."""
    w = weights.to(rig.neutral.dtype)[..., None]

    def at(rows: torch.Tensor) -> torch.Tensor:
        return (rows[..., corners, :] * w).sum(-2)
    return TorchRig(at(rig.neutral), at(rig.shape_deltas), rig.corrective_keys, at(rig.corrective_deltas),
                    at(rig.identity_deltas))


def _rows(rig: TorchRig, index: torch.Tensor | slice) -> TorchRig:
    return TorchRig(rig.neutral[index], rig.shape_deltas[:, index], rig.corrective_keys,
                    rig.corrective_deltas[:, index], rig.identity_deltas[:, index])


def _joined(*rigs: TorchRig) -> TorchRig:
    """The rows of ``rigs`` one after the other."""
    def cat(name: str, axis: int) -> torch.Tensor:
        return torch.cat([getattr(r, name) for r in rigs], axis)
    return TorchRig(cat("neutral", 0), cat("shape_deltas", 1), rigs[0].corrective_keys, cat("corrective_deltas", 1),
                    cat("identity_deltas", 1))


@dataclass
class RasterFitModel(FitModel):
    """A :class:`FitModel` whose samples are surface points, seen where a rasterisation says.

    ``rig`` holds the mesh's vertices (the first ``num_vertices`` rows) and then the surface points that are not
    vertices; ``samples`` indexes the points in it. Besides FitModel's attributes:

    Attributes:
        num_vertices: the mesh's vertex count.
        point_corners, point_weights: [N, 3] each sample's triangle corners (vertex indices) and barycentrics.
        drawn: [Fd] rows of ``faces`` the visibility raster draws (every opaque triangle); one_sided: [Fd] bool,
            those drawn only where they face the view (the sampled skin, whose inside is seen only through
            openings that the other triangles close).
        raster_scale: image scale of the visibility raster.
        ctx: the rasteriser's context.
    """

    num_vertices: int
    point_corners: torch.Tensor
    point_weights: torch.Tensor
    drawn: torch.Tensor
    one_sided: torch.Tensor
    raster_scale: float
    ctx: RasterContext

    def sample_normals(self, verts: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] unit normals at the points: their corners' vertex normals interpolated (smooth shading)."""
        normals = vertex_normals(verts[:, :self.num_vertices], self.sample_faces)
        n = (normals[:, self.point_corners] * self.point_weights[..., None]).sum(2)
        return n / (n * n).sum(-1, keepdim=True).sqrt().clamp_min(1e-30)

    def visible_samples(self, verts: torch.Tensor) -> torch.Tensor:
        """[B, C, N] which cameras see each point of [B, V', 3] posed rows of ``rig`` (:func:`raster_visibility`)."""
        return raster_visibility(self, verts)


def raster_model(model: FitModel, rig: Rig, exclude_materials: list[str], spacing: float, raster_scale: float,
                 ctx: RasterContext) -> RasterFitModel:
    """``model`` (built on ``rig`` with the vertex samples of ``exclude_materials``) with surface points at most
    ``spacing`` (calibration units) apart as its samples, their visibility rasterised at ``raster_scale``.

    The points' rig rows come from ``model``'s own (``model.rig``, ``model.rows``), so whatever offsets the model
    carries, the points carry.
    """
    device = model.samples.device
    sampled = photometric_faces(rig, exclude_materials)
    vertices = model.samples.cpu().numpy()
    points = lay_surface_points(rig.neutral, rig.faces[sampled], vertices, spacing)
    corners = torch.as_tensor(points.corners, device=device)
    weights = torch.as_tensor(points.weights, device=device, dtype=torch.float32)
    extra = slice(points.num_vertex_points, None)
    V, N, L = rig.num_vertices, len(points), len(model.landmarks)
    row_of = torch.full((V,), -1, dtype=torch.long, device=device)
    row_of[model.samples] = torch.arange(len(vertices), device=device)
    vertex_rows = _rows(model.rows, slice(0, len(vertices)))
    rows = _joined(vertex_rows, _at_points(vertex_rows, row_of[corners[extra]], weights[extra]),
                   _rows(model.rows, slice(len(vertices), None)))
    full = _joined(model.rig, _at_points(model.rig, corners[extra], weights[extra]))
    drawn = rig.opaque_faces()
    hessian_rows, hessian_scale, hessian_samples = hessian_subset(N, L, device)
    base = {f.name: getattr(model, f.name) for f in fields(FitModel)}
    base.update(rig=full, rows=rows, hessian_rows=hessian_rows, hessian_scale=hessian_scale,
                hessian_samples=hessian_samples,
                samples=torch.cat([model.samples, V + torch.arange(N - points.num_vertex_points, device=device)]))
    return RasterFitModel(**base, num_vertices=V, point_corners=corners, point_weights=weights,
                          drawn=torch.as_tensor(drawn, device=device).long(),
                          one_sided=torch.as_tensor(np.isin(drawn, sampled), device=device),
                          raster_scale=raster_scale, ctx=ctx)


def _plane_depths(mesh: torch.Tensor, faces: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each triangle's plane seen from each camera: normals [B, F, 3] and n . (corner - centre) [B, C, F]."""
    corners = mesh[:, faces]                                                           # [B, F, 3, 3]
    normal = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    offset = (normal * corners[:, :, 0]).sum(-1)                                       # [B, F]
    return normal, offset[:, None] - torch.einsum("bfi,ci->bcf", normal, centres)


def raster_visibility(model: RasterFitModel, verts: torch.Tensor) -> torch.Tensor:
    """[B, C, N] which cameras see each of ``model``'s points, from [B, V', 3] posed rows of ``model.rig``.

    Each view's raster gives the triangle in front at the point's pinhole pixel; the point is hidden where that
    triangle's plane crosses its ray in front of it by more than the tolerance (the module docstring), and seen
    where it faces the camera and its distorted projection lies inside the frame.
    """
    cams, s = model.cams, model.raster_scale
    mesh = verts[:, :model.num_vertices]
    X = verts[:, model.samples]                                                       # [B, N, 3]
    B, C = X.shape[0], len(cams)
    front = rasterise_front(model.ctx, mesh, model.faces, model.drawn, cams, s, model.one_sided)
    H, W = front.face.shape[1:]
    pinhole = project_points(X, cams, distort=False) * s + (s - 1) / 2                  # [B, C, N, 2] raster px
    col = pinhole[..., 0].round().long() + front.pad[0]
    row = pinhole[..., 1].round().long() + front.pad[1]
    on_canvas = (col >= 0) & (col < W) & (row >= 0) & (row < H)
    view = (torch.arange(B, device=X.device)[:, None] * C + torch.arange(C, device=X.device))[..., None]
    face = torch.where(on_canvas, front.face[view, row.clamp(0, H - 1), col.clamp(0, W - 1)], -1)   # [B, C, N]
    centres = -(cams.R.transpose(1, 2) @ cams.t[..., None])[..., 0]                     # [C, 3]
    normal, corner_depth = _plane_depths(mesh, model.faces, centres)
    at = face.clamp(min=0)
    frame = torch.arange(B, device=X.device)[:, None, None]
    n = normal[frame, at]                                                              # [B, C, N, 3]
    to_point = (n * X[:, None]).sum(-1) - (n * centres[:, None]).sum(-1)              # n . (X - centre)
    to_plane = corner_depth[frame, torch.arange(C, device=X.device)[:, None], at]     # n . (corner - centre)
    focal = scaled_intrinsics(cams.K, s)[:, :2, :2].diagonal(dim1=-2, dim2=-1).mean(-1)
    tolerance = (DEPTH_TOLERANCE_PX / focal)[:, None]                                  # relative depth along the ray
    hidden = (face >= 0) & (to_point * to_plane > 0) & (to_plane.abs() < (1 - tolerance) * to_point.abs())
    X_cam = world_to_camera(X, cams)
    facing = facing_cosine(X_cam, model.sample_normals(verts), cams) > MIN_FACING_COSINE
    return ~hidden & facing & inside_image(project_points(X, cams), cams) & (X_cam[..., 2] > 0)
