"""Surface samples by rasterisation: the visible points of a mesh's sampled triangles, one per pixel block.

Each view (frame b, camera c) is rasterised with :mod:`facecap.render`'s ops (nvdiffrast on CUDA, the
torch backend elsewhere), drawing the sampled triangles (the face region) and the occluders (eyeballs,
lashes, the mouth's inside: everything opaque) together, so visibility is the rasteriser's exact
z-buffer. Every raster pixel whose front surface is a sampled triangle facing the camera becomes a sample:
a surface point named by its triangle and barycentrics, which moves with the mesh.

The raster is a pinhole image at ``scale / stride`` of the camera's resolution, so a sample stands for a
``stride`` x ``stride`` block of the level's image; it is padded by what the lens pulls into the frame
(:func:`facecap.render.lens_warp_for`). Lens distortion is not rasterised: the residual compares the
model's colour with the frame at the point's distorted projection
(:func:`facecap.camera.torch_camera.project_scattered_with_jacobian`), which is where the point is seen
whatever the grid it was picked on; distortion maps rays to pixels one to one, so visibility in the
pinhole image is visibility in the frame. Samples whose distorted projection falls within
``BORDER_PX`` of the frame's edge are left out.

A sample's position, normal or any per-vertex quantity is the barycentric combination of its
triangle's corners (:func:`at_samples`); so is the Jacobian of its position w.r.t. anything the
vertices depend on: d X / d V_k = b_k I for the triangle's corners k (:func:`position_jacobian`).
"""

from dataclasses import dataclass, fields

import torch

from facecap.camera.torch_camera import (
    CameraTensors,
    canvas_size,
    near_far_from_points,
    project_scattered_with_jacobian,
    world_to_clip,
)
from facecap.checks import check_shape
from facecap.errors import FacecapError
from facecap.fit.appearance import inside_image
from facecap.render import ops
from facecap.render.renderer import lens_warp_for

__all__ = ["SurfaceSamples", "rasterise_samples", "at_samples", "sample_normals", "position_jacobian",
           "MAX_RASTER_PIXELS"]

MAX_RASTER_PIXELS = 1 << 23  # raster pixels per rasteriser call (views are rasterised in chunks): rast is 16 B each


@dataclass(frozen=True)
class SurfaceSamples:
    """Visible surface points, scattered over views.

    Attributes:
        frame, camera: [n] long, the view of each sample (its frame in the batch, its camera).
        triangle: [n] long, rows of the faces rasterised; barycentrics: [n, 3] of the triangle's corners
            (perspective-correct, summing to 1).
        pixel: [n, 2] the pinhole pixel (full-resolution OpenCV coordinates, no distortion) whose ray
            picked the point: where the point projected when it was sampled.
    """

    frame: torch.Tensor
    camera: torch.Tensor
    triangle: torch.Tensor
    barycentrics: torch.Tensor
    pixel: torch.Tensor

    def __len__(self) -> int:
        return self.frame.shape[0]

    def subset(self, keep: torch.Tensor) -> "SurfaceSamples":
        """The samples ``keep`` selects (a mask or indices)."""
        return SurfaceSamples(*(getattr(self, f.name)[keep] for f in fields(self)))


def at_samples(values: torch.Tensor, samples: SurfaceSamples, faces: torch.Tensor, shared: bool = False
               ) -> torch.Tensor:
    """Per-vertex ``values`` [B, V, ...] (with ``shared``, [V, ...] for every frame) at the samples: [n, ...],
    each sample's barycentric combination of its triangle's corners (positions, normals, colours, Jacobians)."""
    corners = faces[samples.triangle]                                             # [n, 3]
    at = values[corners] if shared else values[samples.frame[:, None], corners]  # [n, 3, ...]
    weights = samples.barycentrics.to(values.dtype).reshape(*corners.shape, *(1,) * (at.dim() - 2))
    return (at * weights).sum(1)


def sample_normals(vertex_normals: torch.Tensor, samples: SurfaceSamples, faces: torch.Tensor) -> torch.Tensor:
    """[n, 3] unit normals at the samples, interpolated from [B, V, 3] vertex normals (smooth shading)."""
    n = at_samples(vertex_normals, samples, faces)
    return n / (n * n).sum(-1, keepdim=True).sqrt().clamp_min(1e-30)


def position_jacobian(samples: SurfaceSamples, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d(sample position) / d(corner vertex k) = weight_k I: the corners [n, 3] (vertex indices) and weights
    [n, 3] (the barycentrics). Chained with vertex Jacobians J_v, a sample's is sum_k weight_k J_{corner_k}."""
    return faces[samples.triangle], samples.barycentrics


def rasterise_samples(ctx: ops.RasterContext, verts: torch.Tensor, faces: torch.Tensor, sampled: torch.Tensor,
                      occluders: torch.Tensor, cams: CameraTensors, scale: float = 1.0, stride: int = 1,
                      one_sided: torch.Tensor | None = None) -> SurfaceSamples:
    """The visible points of the ``sampled`` triangles in every view, one per ``stride`` pixels of the image
    at ``scale``.

    Args:
        ctx: rasteriser context (:func:`facecap.render.make_context`).
        verts: [B, V, 3] posed meshes, world units (the calibration's).
        faces: [F, 3] long triangles; sampled: [Fs] rows of the triangles that give samples;
            occluders: [Fo] rows of the other triangles drawn (they hide samples but give none).
        cams: C cameras sharing one image size.
        scale: the image scale of the pyramid level (images at ``scale`` times the cameras' resolution).
        stride: one sample per ``stride`` x ``stride`` pixels of that level.
        one_sided: [Fc] bool over ``faces``' rows, or None: triangles of outward-facing surfaces (skin,
            eyeballs, teeth; not cards such as lashes), which each view draws only where they face it. A
            surface seen from inside hides only what lies inside it, so the samples stay the same where
            the surface is closed, and the rasteriser does about half the work (each view is then its
            own rasteriser call).
    Returns:
        the samples, in view order (frame-major, then camera).
    """
    B = check_shape(verts, "B V 3", "verts")["B"]
    check_shape(faces, "F 3", "faces")
    if stride < 1 or not 0 < scale <= 1:
        raise FacecapError(f"need stride >= 1 and scale in (0, 1], got stride {stride}, scale {scale}")
    C = len(cams)
    raster_scale = scale / stride
    warp = lens_warp_for(cams, raster_scale)
    pad = warp.pad if warp is not None else (0, 0)
    W, H = canvas_size(cams, raster_scale, pad)
    near, far = near_far_from_points(verts, cams)
    pos = world_to_clip(verts, cams, near, far, scale=raster_scale, pad=pad).flatten(0, 1)    # [B C, V, 4]
    sampled, occluders = sampled.long(), occluders.long()
    if one_sided is None:
        views_per_call = max(1, MAX_RASTER_PIXELS // (W * H))
        calls = [(torch.arange(v, min(v + views_per_call, B * C), device=verts.device), sampled, occluders)
                 for v in range(0, B * C, views_per_call)]
    else:
        facing = _facing(verts, faces, cams)                                         # [B C, F]
        calls = [(torch.tensor([v], device=verts.device), sampled[~one_sided[sampled] | facing[v, sampled]],
                  occluders[~one_sided[occluders] | facing[v, occluders]]) for v in range(B * C)]
    found = []
    for views, shown, hiding in calls:
        tri = faces[torch.cat([shown, hiding])].to(torch.int32).contiguous()
        rast, _ = ops.rasterize(ctx, pos[views].contiguous(), tri, (H, W), grad_db=False)
        hit = rast[..., 3].long() - 1                                              # rows of shown, then hiding
        view, y, x = torch.nonzero((hit >= 0) & (hit < len(shown)), as_tuple=True)
        uv = rast[view, y, x, :2].to(verts.dtype)
        bary = torch.stack([1 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], -1)
        found.append((views[view], shown[hit[view, y, x]], bary, torch.stack([x - pad[0], y - pad[1]], -1)))
    view, triangle, bary, raster_px = (torch.cat(parts) for parts in zip(*found))
    pixel = (raster_px.to(verts.dtype) + 0.5) / raster_scale - 0.5                  # full-resolution pinhole px
    samples = SurfaceSamples(view // C, view % C, triangle, bary, pixel)
    return samples.subset(_seen(samples, verts, faces, cams))


def _facing(verts: torch.Tensor, faces: torch.Tensor, cams: CameraTensors) -> torch.Tensor:
    """[B C, F] whether each triangle faces each view's camera (its outward normal towards the camera)."""
    corners = verts[:, faces]                                                      # [B, F, 3, 3]
    normal = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    centre = -(cams.R.transpose(1, 2) @ cams.t[..., None])[..., 0]                # [C, 3] camera centres, world
    toward = centre[None, :, None] - corners[:, None, :, 0]                        # [B, C, F, 3]
    return ((toward * normal[:, None]).sum(-1) > 0).flatten(0, 1)


def _seen(samples: SurfaceSamples, verts: torch.Tensor, faces: torch.Tensor, cams: CameraTensors) -> torch.Tensor:
    """[n] the samples whose triangle faces their camera and whose distorted projection lies inside the frame."""
    corners = verts[samples.frame[:, None], faces[samples.triangle]]              # [n, 3, 3]
    normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1)
    point = (samples.barycentrics[..., None] * corners).sum(1)
    centre = -(cams.R.transpose(1, 2) @ cams.t[..., None])[..., 0]
    facing = (normal * (centre[samples.camera] - point)).sum(-1) > 0
    px, _ = project_scattered_with_jacobian(point, samples.camera, cams)
    return facing & inside_image(px, cams, samples.camera)
