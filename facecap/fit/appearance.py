"""The photometric model of the fit, evaluated where the surface is sampled, and its closed-form solve.

Analysis by synthesis needs, for each visible surface sample, the colour the model predicts and
the colour the camera saw. The samples are the face region's vertices. The prediction is
``gain_c * albedo_v * E(n_v) + bias_c`` (Lambertian, order-2 SH irradiance ``E``), and the
observation is the frame bilinearly sampled at the vertex's distorted projection, so the
geometry is constrained through the image gradient. Visibility comes from a point z-buffer.
Dense rigs (ICT: about one face vertex per pixel at 800x600) lose little against full-image
rendering, at a tiny fraction of the cost.

Given the geometry, every appearance parameter enters the prediction linearly when the others
are held, so they are solved exactly by alternating weighted least squares instead of being
descended: albedo per vertex, SH per channel, gain and bias per camera and channel. The normal
equations of each batch of frames are added to those of the batches already fitted
(:class:`AppearanceStats`), so the albedo is estimated from the whole take, never from the rig's texture.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facecap.camera.torch_camera import CameraTensors, project_points, world_to_camera
from facecap.render.shading import SH_C0
from facecap.rig.model import Rig

__all__ = ["Appearance", "AppearanceStats", "solve_appearance", "photometric_faces", "photometric_samples",
           "sample_images", "sample_points",
           "splat_visibility", "PointZBuffer", "facing_cosine", "inside_image",
           "initial_albedo"]

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
    """Appearance parameters shared by all frames of a take.

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

    def predict(self, basis: torch.Tensor) -> torch.Tensor:
        """[B, N, 9] SH basis of the sample normals -> [B, C, N, 3] predicted colours per camera."""
        shaded = self.albedo * (basis @ self.sh)                         # [B, N, 3]
        return shaded[:, None] * self.gains[None, :, None] + self.bias[None, :, None]


@dataclass
class AppearanceStats:
    """Normal equations of the appearance solves, summed over frames (see :func:`solve_appearance`).

    Attributes:
        response: [5, C, 3] sums of w s², w s, w, w s o, w o per camera and channel (s = albedo E).
        sh_matrix: [3, 9, 9] and sh_vector: [3, 9] per channel.
        albedo_num, albedo_den: [N, 3].
    """

    response: torch.Tensor
    sh_matrix: torch.Tensor
    sh_vector: torch.Tensor
    albedo_num: torch.Tensor
    albedo_den: torch.Tensor

    def __add__(self, other: "AppearanceStats") -> "AppearanceStats":
        return AppearanceStats(*(a + b for a, b in zip(self._fields(), other._fields())))

    def _fields(self) -> tuple[torch.Tensor, ...]:
        return self.response, self.sh_matrix, self.sh_vector, self.albedo_num, self.albedo_den


# Ridge weights, relative to the data's: a weak pull of the camera gains towards 1 (gain and SH
# scale are otherwise interchangeable) and of unseen albedo towards its value.
RESPONSE_RIDGE = 1e-6
ALBEDO_RIDGE = 1e-6


def solve_appearance(appearance: Appearance, committed: AppearanceStats | None, observed: torch.Tensor,
                     weight: torch.Tensor, basis: torch.Tensor) -> tuple[Appearance, AppearanceStats]:
    """One round of exact weighted least squares: camera response, then SH, then albedo.

    Args:
        appearance: the current estimate (the starting point of the alternation).
        committed: the summed normal equations of frames fitted before this batch, or None.
        observed: [B, C, N, 3] colours; weight: [B, C, N, 3] (visibility times robust weights).
        basis: [B, N, 9] SH basis of the sample normals.
    Returns:
        the new appearance and this batch's normal equations (add them to ``committed`` when the
        batch is done).
    """
    albedo, sh, gains, bias = appearance.albedo, appearance.sh, appearance.gains, appearance.bias
    total_weight = weight.sum().clamp_min(1e-12)

    # Camera response: o = g s + b per camera and channel, a 2x2 system each.
    s = (albedo * (basis @ sh))[:, None]                                       # [B, 1, N, 3]
    ws = weight * s
    response = torch.stack([(ws * s).sum((0, 2)), ws.sum((0, 2)), weight.sum((0, 2)),
                            (ws * observed).sum((0, 2)), (weight * observed).sum((0, 2))])
    committed_response = response if committed is None else response + committed.response
    s2, s1, n, so, o = committed_response
    ridge = RESPONSE_RIDGE * s2.clamp_min(1e-12)                               # pulls the gain towards 1
    det = (s2 + ridge) * n - s1 * s1
    gains = (n * (so + ridge) - s1 * o) / det
    bias = ((s2 + ridge) * o - s1 * (so + ridge)) / det

    # SH: o - b = g albedo (Y . sh), 9 unknowns per channel. The cameras of a sample share its Y, so
    # their weights are summed first: one weighted [B N, 9] GEMM per channel.
    target = observed - bias[None, :, None]
    wg = weight * gains[None, :, None]                                         # [B, C, N, 3]
    Y = basis.reshape(-1, 9)
    row_weight = ((wg * gains[None, :, None]).sum(1) * albedo * albedo).reshape(-1, 3)   # sum_c w g^2 a^2
    row_target = ((wg * target).sum(1) * albedo).reshape(-1, 3)                          # sum_c w g (o - b) a
    sh_matrix = (row_weight.T[:, :, None] * Y).transpose(1, 2) @ Y                      # [3, 9, 9]
    sh_vector = row_target.T @ Y                                                         # [3, 9]
    total_matrix, total_vector = (sh_matrix, sh_vector) if committed is None else \
        (sh_matrix + committed.sh_matrix, sh_vector + committed.sh_vector)
    eye = torch.eye(9, dtype=sh.dtype, device=sh.device) * (1e-9 * total_weight)
    sh = torch.linalg.solve(total_matrix + eye, total_vector[..., None])[..., 0].T.contiguous()

    # Albedo: o - b = (g E) a per vertex and channel.
    gE = gains[None, :, None] * (basis @ sh)[:, None]                          # [B, C, N, 3]
    albedo_num = (weight * gE * target).sum((0, 1))
    albedo_den = (weight * gE * gE).sum((0, 1))
    stats = AppearanceStats(response, sh_matrix, sh_vector, albedo_num, albedo_den)
    num, den = (albedo_num, albedo_den) if committed is None else \
        (albedo_num + committed.albedo_num, albedo_den + committed.albedo_den)
    ridge = ALBEDO_RIDGE * total_weight
    albedo = (num + ridge * albedo) / (den + ridge)
    return Appearance(albedo=albedo, sh=sh, gains=gains, bias=bias), stats


def photometric_faces(rig: Rig, exclude_materials: list[str]) -> np.ndarray:
    """[F'] the triangles sampled photometrically: the drawn ones outside ``exclude_materials``.

    The back of the head counts: the skull pins the pose.
    """
    faces = rig.opaque_faces()
    if rig.face_material is not None and rig.material_names:
        excluded = [i for i, name in enumerate(rig.material_names) if name in exclude_materials]
        faces = faces[~np.isin(rig.face_material[faces], excluded)]
    return faces


def photometric_samples(rig: Rig, exclude_materials: list[str]) -> np.ndarray:
    """[N] vertices sampled photometrically: the corners of :func:`photometric_faces`."""
    return np.unique(rig.faces[photometric_faces(rig, exclude_materials)])


def sample_images(images: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of [B, C, K, H, W] images at [B, C, N, 2] pixel positions -> [B, C, N, K].

    Pixel centres are at integer coordinates (docs/formats.md), hence align_corners=False with the
    half-pixel offset.
    """
    B, C, K, H, W = images.shape
    size = torch.tensor([W, H], dtype=pixels.dtype, device=pixels.device)
    grid = (pixels + 0.5) / size * 2 - 1
    out = F.grid_sample(images.reshape(B * C, K, H, W), grid.reshape(B * C, 1, -1, 2), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.reshape(B, C, K, -1).transpose(-1, -2)


def sample_points(images: torch.Tensor, frame: torch.Tensor, camera: torch.Tensor,
                  pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of [B, C, K, H, W] images at [n, M, 2] pixels, point i's in image (frame[i], camera[i])
    -> [n, M, K]; the same values as :func:`sample_images` gives, for points scattered over the images.
    """
    H, W = images.shape[-2:]
    x = pixels[..., 0].clamp(0, W - 1)                                     # border padding, as grid_sample's
    y = pixels[..., 1].clamp(0, H - 1)
    x0, y0 = x.floor().clamp(max=W - 2), y.floor().clamp(max=H - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    flat = images.flatten(3)                                               # [B, C, K, H W]
    corner = y0.long() * W + x0.long()

    def at(offset: int) -> torch.Tensor:
        return flat[frame[:, None], camera[:, None], :, corner + offset]    # [n, M, K]
    top = at(0) * (1 - fx) + at(1) * fx
    bottom = at(W) * (1 - fx) + at(W + 1) * fx
    return top * (1 - fy) + bottom * fy


class PointZBuffer:
    """The nearest depth of a mesh's projected vertices in cells of a few pixels, per frame and camera.

    A dense mesh covers every cell its surface covers, so the grid answers both "is this point
    the front surface?" (visibility) and "is there background next to it?" (the outline).
    """

    def __init__(self, occluders: torch.Tensor, cams: CameraTensors) -> None:
        """``occluders`` [B, M, 3]: every vertex of the mesh (anything can hide a sample)."""
        W, H = cams.common_size()
        self.width, self.height = int(W // SPLAT_CELL_PX) + 1, int(H // SPLAT_CELL_PX) + 1
        B = occluders.shape[0]
        depth = torch.full((B, len(cams), self.height * self.width), float("inf"), dtype=occluders.dtype,
                           device=occluders.device)
        self.depth = depth.scatter_reduce(2, self.cells(project_points(occluders, cams)),
                                          world_to_camera(occluders, cams)[..., 2], reduce="amin")

    def cells(self, px: torch.Tensor) -> torch.Tensor:
        """[B, C, N] flat cell index of [B, C, N, 2] pixels (clamped to the grid)."""
        cx = (px[..., 0] / SPLAT_CELL_PX).floor().clamp(0, self.width - 1).long()
        cy = (px[..., 1] / SPLAT_CELL_PX).floor().clamp(0, self.height - 1).long()
        return cy * self.width + cx

    def in_front(self, px: torch.Tensor, depth: torch.Tensor, tolerance: float = VISIBILITY_DEPTH_TOLERANCE,
                 frame: torch.Tensor | None = None, camera: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, N] whether points at [B, C, N, 2] pixels and [B, C, N] depths are the nearest surface,
        within ``tolerance`` of the depth; for scattered points, [n] of [n, 2] pixels in the views ``frame``,
        ``camera`` [n]."""
        return depth <= self._at(self.depth, px, frame, camera) * (1 + tolerance)

    def next_to_background(self, px: torch.Tensor, frame: torch.Tensor | None = None,
                           camera: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, N] (or [n], as :meth:`in_front`) whether background is within a cell of each pixel's cell.

        Background is what stays empty after a closing of the covered cells: where the mesh is
        sparser than a cell, the gaps between its vertices are no background.
        """
        grid = self.depth.unflatten(2, (self.height, self.width)).flatten(0, 1)[:, None]
        covered = torch.isfinite(grid).to(px.dtype)
        closed = -F.max_pool2d(-F.max_pool2d(covered, 5, stride=1, padding=2), 5, stride=1, padding=2)
        near = F.max_pool2d(1 - closed, 3, stride=1, padding=1)
        return self._at(near.view(self.depth.shape), px, frame, camera) > 0

    def _at(self, grid: torch.Tensor, px: torch.Tensor, frame: torch.Tensor | None,
            camera: torch.Tensor | None) -> torch.Tensor:
        """``grid`` [B, C, cells] at the cells of pixels [B, C, N, 2], or of scattered [n, 2] pixels in the
        views ``frame``, ``camera`` [n]."""
        if frame is None:
            return grid.gather(2, self.cells(px))
        return grid[frame, camera, self.cells(px)]


def splat_visibility(X_world: torch.Tensor, normals: torch.Tensor, cams: CameraTensors,
                     occluders: torch.Tensor) -> torch.Tensor:
    """Which sample points each camera sees, by a point z-buffer of the whole mesh.

    Args:
        X_world: [B, N, 3] sample points; normals: [B, N, 3] their unit normals.
        cams: C cameras; occluders: [B, M, 3] every vertex of the mesh (anything can hide a sample).
    Returns:
        [B, C, N] bool.
    """
    px = project_points(X_world, cams)                                      # [B, C, N, 2]
    X_cam = world_to_camera(X_world, cams)                                  # [B, C, N, 3]
    depth = X_cam[..., 2]
    visible = PointZBuffer(occluders, cams).in_front(px, depth)
    facing = facing_cosine(X_cam, normals, cams) > MIN_FACING_COSINE
    return visible & inside_image(px, cams) & facing & (depth > 0)


def inside_image(px: torch.Tensor, cams: CameraTensors, camera: torch.Tensor | None = None) -> torch.Tensor:
    """[B, C, N] whether [B, C, N, 2] pixels lie ``BORDER_PX`` inside their camera's image; or [n] for
    scattered [n, 2] pixels in the cameras ``camera`` [n]."""
    sizes = cams.image_sizes.to(px.dtype)
    sizes = sizes[None, :, None] if camera is None else sizes[camera]
    return ((px >= BORDER_PX) & (px <= sizes - 1 - BORDER_PX)).all(-1)


def facing_cosine(X_cam: torch.Tensor, normals: torch.Tensor, cams: CameraTensors) -> torch.Tensor:
    """[B, C, N] cosine between world ``normals`` [B, N, 3] and the direction to each camera of
    points [B, C, N, 3] in camera coordinates (negative: the surface faces away)."""
    n_cam = torch.einsum("cij,bnj->bcni", cams.R, normals)
    # Not F.normalize: camera points come out of an einsum with their axes in separate planes, and a
    # norm over a strided last axis is far slower than these elementwise sums.
    return -(n_cam * X_cam).sum(-1) / (X_cam * X_cam).sum(-1).sqrt().clamp_min(1e-30)


def initial_albedo(observed: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """[N, 3] albedo as the mean of visible observations [B, C, N, 3] (mask [B, C, N]); grey where unseen."""
    w = visible.to(observed.dtype)[..., None]
    total = (observed * w).sum((0, 1))
    count = w.sum((0, 1))
    mean_colour = total.sum(0) / count.sum().clamp_min(1)
    return torch.where(count > 0, total / count.clamp_min(1), mean_colour)
