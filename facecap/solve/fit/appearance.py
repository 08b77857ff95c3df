"""The photometric model of the fit, evaluated where the surface is sampled.

Analysis by synthesis needs, for each visible surface sample, the colour the model predicts and
the colour the camera saw. Two samplings share this model:

- vertex sampling (``photometric_mode="vertex"``, the CPU default): the samples are the face
  region's vertices. The prediction is ``gain_c * albedo_v * E(n_v) + bias_c`` (Lambertian, order-2
  SH irradiance ``E``), and the observation is the frame bilinearly sampled at the vertex's
  distorted projection, so gradients reach the geometry through the image gradient. Visibility
  comes from a point z-buffer, recomputed each stage. Dense rigs (ICT: ~3 px between face
  vertices at 800x600) lose little against full-image rendering, at a tiny fraction of the cost.
- image rendering (``"render"``, the default with CUDA and nvdiffrast): the same colour model
  rasterised over every pixel by :func:`facecap.render.renderer.render_views`.

The albedo lives on the vertices (the texture at the mesh's resolution): it is estimated from
the take, starting from the mean of the visible observations, never from the rig's texture.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facecap.camera.torch_camera import CameraTensors, project_points, world_to_camera
from facecap.render.shading import SH_C0, sh_irradiance

__all__ = ["Appearance", "sample_images", "splat_visibility", "initial_albedo"]

# A vertex is visible when its depth is within this fraction of the nearest depth in its cell...
VISIBILITY_DEPTH_TOLERANCE = 0.004
# ...it faces the camera at least this much (cosine), so grazing samples with unreliable colour are left out...
MIN_FACING_COSINE = 0.25
# ...and it projects this many pixels inside the image border.
BORDER_PX = 2.0
# The point z-buffer's cell size in pixels: a few vertex spacings, so the surface has no holes.
SPLAT_CELL_PX = 4.0


@dataclass
class Appearance:
    """Appearance parameters shared by all frames of a take (leaf tensors, optimised).

    Attributes:
        albedo: [N, 3] per sampled vertex, linear colour in [0, 1]-ish.
        sh: [9, 3] irradiance SH coefficients in the world frame.
        gains, bias: [C, 3] per-camera colour response.
    """

    albedo: torch.Tensor
    sh: torch.Tensor
    gains: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def neutral(cls, albedo: torch.Tensor, cameras: int) -> "Appearance":
        """Unit ambient light (E = 1 everywhere) and identity camera responses."""
        sh = torch.zeros(9, 3, dtype=albedo.dtype, device=albedo.device)
        sh[0] = 1.0 / SH_C0
        ones = torch.ones(cameras, 3, dtype=albedo.dtype, device=albedo.device)
        return cls(albedo=albedo, sh=sh, gains=ones, bias=torch.zeros_like(ones))

    def parameters(self) -> list[torch.Tensor]:
        return [self.albedo, self.sh, self.gains, self.bias]

    def predict(self, normals: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] unit normals -> [B, C, N, 3] predicted colours per camera."""
        shaded = self.albedo * sh_irradiance(normals, self.sh[None])     # [B, N, 3]
        return shaded[:, None] * self.gains[None, :, None] + self.bias[None, :, None]


def sample_images(images: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of [B, C, 3, H, W] images at [B, C, N, 2] pixel positions -> [B, C, N, 3].

    Pixel centres are at integer coordinates (FORMATS.md), hence align_corners=False with the
    half-pixel offset.
    """
    B, C, _, H, W = images.shape
    size = torch.tensor([W, H], dtype=pixels.dtype, device=pixels.device)
    grid = (pixels + 0.5) / size * 2 - 1
    out = F.grid_sample(images.reshape(B * C, 3, H, W), grid.reshape(B * C, 1, -1, 2), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.reshape(B, C, 3, -1).transpose(-1, -2)


def splat_visibility(X_world: torch.Tensor, normals: torch.Tensor, cams: CameraTensors,
                     occluders: torch.Tensor) -> torch.Tensor:
    """Which sample points each camera sees, by a point z-buffer of the whole mesh.

    Args:
        X_world: [B, N, 3] sample points; normals: [B, N, 3] their unit normals.
        cams: C cameras; occluders: [B, M, 3] every vertex of the mesh (anything can hide a sample).
    Returns:
        [B, C, N] bool.
    """
    B = X_world.shape[0]
    C = len(cams)
    W, H = cams.common_size()
    gw, gh = int(W // SPLAT_CELL_PX) + 1, int(H // SPLAT_CELL_PX) + 1

    def cells(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        px = project_points(points, cams)                                   # [B, C, P, 2]
        depth = world_to_camera(points, cams)[..., 2]                       # [B, C, P]
        cx = (px[..., 0] / SPLAT_CELL_PX).floor().clamp(0, gw - 1).long()
        cy = (px[..., 1] / SPLAT_CELL_PX).floor().clamp(0, gh - 1).long()
        return cy * gw + cx, depth

    occ_cell, occ_depth = cells(occluders)
    zbuf = torch.full((B, C, gh * gw), float("inf"), dtype=X_world.dtype, device=X_world.device)
    zbuf = zbuf.scatter_reduce(2, occ_cell, occ_depth, reduce="amin")
    cell, depth = cells(X_world)
    nearest = zbuf.gather(2, cell)
    visible = depth <= nearest * (1 + VISIBILITY_DEPTH_TOLERANCE)
    px = project_points(X_world, cams)
    sizes = cams.image_sizes.to(px.dtype)[None, :, None]
    inside = ((px >= BORDER_PX) & (px <= sizes - 1 - BORDER_PX)).all(-1)
    to_camera = -world_to_camera(X_world, cams)                            # camera centre minus point, camera frame
    n_cam = torch.einsum("cij,bnj->bcni", cams.R, normals)
    facing = (n_cam * torch.nn.functional.normalize(to_camera, dim=-1)).sum(-1) > MIN_FACING_COSINE
    return visible & inside & facing & (depth > 0)


def initial_albedo(observed: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """[N, 3] albedo as the mean of visible observations [B, C, N, 3] (mask [B, C, N]); grey where unseen."""
    w = visible.to(observed.dtype)[..., None]
    total = (observed * w).sum((0, 1))
    count = w.sum((0, 1))
    mean_colour = total.sum(0) / count.sum().clamp_min(1)
    return torch.where(count > 0, total / count.clamp_min(1), mean_colour)
