"""Batched, differentiable cameras in torch: OpenCV projection and the OpenCV-to-clip-space bridge.

This module is the ONE place where facecap's pixel conventions meet a rasteriser's:

- OpenCV (docs/formats.md): x right, y down, z forward; pixel centres at integer coordinates, the
  top-left pixel's centre is (0, 0); ``x_cam = R @ X_world + t``.
- nvdiffrast clip space: ``(x, y, z, w)``, NDC = clip / w in [-1, 1]; pixel column i has its centre
  at ``x_ndc = (2 i + 1) / W - 1``, and output row j has its centre at ``y_ndc = (2 j + 1) / H - 1``
  (nvdiffrast's row 0 is clip y = -1).

:func:`world_to_clip` maps OpenCV pixel row ``v`` to ``y_ndc = (2 v + 1) / H - 1``, so rasterised row
j IS OpenCV row j: rendered images come out in OpenCV layout with no image flip anywhere. The price
is that screen-space winding is mirrored relative to OpenGL, which does not matter because the
rasteriser draws both facings.
"""

from dataclasses import dataclass

import numpy as np
import torch

from facecap.camera.model import Calibration
from facecap.checks import check_shape
from facecap.errors import ShapeError

__all__ = ["CameraTensors", "world_to_camera", "distort_normalized", "distort_with_jacobian", "project_points",
           "project_points_with_jacobian", "project_scattered_with_jacobian", "world_to_clip", "near_far_from_points",
           "scaled_intrinsics", "scaled_size", "canvas_size", "NUM_DIST"]

NUM_DIST = 14  # OpenCV's full model: k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4 tauX tauY
# Depth margins for near/far planes taken from a mesh: near = NEAR_FACTOR * min depth, far = FAR_FACTOR * max.
NEAR_FACTOR = 0.5
FAR_FACTOR = 2.0
# Points closer to the camera plane than this (in world units) are clamped to avoid division by zero.
MIN_DEPTH = 1e-9


@dataclass(frozen=True)
class CameraTensors:
    """C cameras as tensors on one device/dtype, in a calibration's order.

    Attributes:
        K: [C, 3, 3] intrinsics (pixels, OpenCV).
        dist: [C, 14] OpenCV distortion (k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4 tauX tauY), zero padded.
        R: [C, 3, 3] world-to-camera rotation; t: [C, 3] translation, world units.
        image_sizes: [C, 2] int64 (width, height) in pixels.
        names: C camera names.
    """

    K: torch.Tensor
    dist: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    image_sizes: torch.Tensor
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        C = check_shape(self.K, "C 3 3", "K")["C"]
        check_shape(self.dist, f"{C} {NUM_DIST}", "dist")
        check_shape(self.R, f"{C} 3 3", "R")
        check_shape(self.t, f"{C} 3", "t")
        check_shape(self.image_sizes, f"{C} 2", "image_sizes")
        if len(self.names) != C:
            raise ShapeError(f"names must hold {C} camera names, got {len(self.names)}")

    @classmethod
    def from_calibration(cls, calib: Calibration, device: torch.device | str | None = None,
                         dtype: torch.dtype = torch.float32) -> "CameraTensors":
        """Stack the calibration's cameras; lengths stay in ``calib.units``."""
        def stack(values: list[np.ndarray]) -> torch.Tensor:
            return torch.as_tensor(np.stack(values), device=device, dtype=dtype)
        cams = calib.cameras
        return cls(K=stack([c.K for c in cams]), dist=stack([c.dist14() for c in cams]),
                   R=stack([c.R for c in cams]), t=stack([c.t for c in cams]),
                   image_sizes=torch.as_tensor([list(c.image_size) for c in cams], device=device,
                                               dtype=torch.int64),
                   names=tuple(c.name for c in cams))

    def __len__(self) -> int:
        return self.K.shape[0]

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "CameraTensors":
        """The same cameras on another device and/or float dtype."""
        def cast(x: torch.Tensor) -> torch.Tensor:
            return x.to(device=device, dtype=dtype)
        return CameraTensors(cast(self.K), cast(self.dist), cast(self.R), cast(self.t),
                             self.image_sizes.to(device=device), self.names)

    def select(self, indices: list[int]) -> "CameraTensors":
        """Only the cameras at ``indices``, in that order."""
        idx = torch.as_tensor(indices, device=self.device, dtype=torch.long)
        return CameraTensors(self.K[idx], self.dist[idx], self.R[idx], self.t[idx], self.image_sizes[idx],
                             tuple(self.names[i] for i in indices))

    def common_size(self) -> tuple[int, int]:
        """(width, height) shared by every camera; raises ShapeError when the sizes differ."""
        sizes = {tuple(int(v) for v in s) for s in self.image_sizes.tolist()}
        if len(sizes) != 1:
            raise ShapeError(f"cameras must share one image size to be rendered in a batch, got {sorted(sizes)}; "
                             "render groups of equally sized cameras")
        return sizes.pop()


def scaled_size(image_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) of an image rendered at ``scale`` (rounded to whole pixels)."""
    return max(1, round(image_size[0] * scale)), max(1, round(image_size[1] * scale))


def scaled_intrinsics(K: torch.Tensor, scale: float) -> torch.Tensor:
    """[..., 3, 3] intrinsics of the same camera at ``scale`` times the resolution.

    Pixel centres stay consistent: the pixel coordinate ``x`` becomes ``x' = (x + 0.5) * s - 0.5``, so
    an ``s = 1/2`` image's pixel (0, 0) covers pixels 0..1 of the full image (cf. cv2.pyrDown).
    """
    if scale == 1.0:
        return K
    S = K.new_tensor([[scale, 0.0, 0.5 * scale - 0.5], [0.0, scale, 0.5 * scale - 0.5], [0.0, 0.0, 1.0]])
    return S @ K


def _batch_points(X: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    single = X.dim() == 2
    X = X[None] if single else X
    check_shape(X, "B N 3", name)
    return X, single


def world_to_camera(X_world: torch.Tensor, cams: CameraTensors) -> torch.Tensor:
    """Camera-frame points ``R X + t``: [B, N, 3] (or [N, 3]) world -> [B, C, N, 3] (or [C, N, 3])."""
    X, single = _batch_points(X_world, "X_world")
    Xc = torch.einsum("cij,bnj->bcni", cams.R, X) + cams.t[None, :, None, :]
    return Xc[0] if single else Xc


def _tilt_matrix(tau_x: torch.Tensor, tau_y: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] OpenCV's tilted-sensor projection (computeTiltProjectionMatrix, imgproc/distortion_model.hpp)."""
    cx, sx, cy, sy = torch.cos(tau_x), torch.sin(tau_x), torch.cos(tau_y), torch.sin(tau_y)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rot_x = torch.stack([one, zero, zero, zero, cx, sx, zero, -sx, cx], -1).unflatten(-1, (3, 3))
    rot_y = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], -1).unflatten(-1, (3, 3))
    rot_xy = rot_y @ rot_x
    r22, r02, r12 = rot_xy[..., 2, 2], rot_xy[..., 0, 2], rot_xy[..., 1, 2]
    proj_z = torch.stack([r22, zero, -r02, zero, r22, -r12, zero, zero, one], -1).unflatten(-1, (3, 3))
    return proj_z @ rot_xy


def distort_normalized(xy: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """OpenCV lens distortion of normalised image points (cv::projectPoints, calib3d/src/calibration.cpp).

    Args:
        xy: [C, ..., 2] normalised coordinates ``(x/z, y/z)``.
        dist: [C, 14] coefficients k1 k2 p1 p2 k3 k4 k5 k6 s1 s2 s3 s4 tauX tauY.
    Returns:
        [C, ..., 2] distorted normalised coordinates (before K).
    """
    return _distortion(xy, dist, jacobian=False)[0]


def distort_with_jacobian(xy: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`distort_normalized`'s points [C, ..., 2] and their Jacobian d distorted / d ``xy`` [C, ..., 2, 2],
    in closed form: Gauss-Newton fits and Newton's undistortion need it for every point at every step."""
    return _distortion(xy, dist, jacobian=True)


def _distortion(xy: torch.Tensor, dist: torch.Tensor, jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    extra = (1,) * (xy.dim() - 2)
    d = [dist[:, i].reshape(-1, *extra) for i in range(NUM_DIST)]
    k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4, _, _ = d
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    # Horner forms, and the rational and thin-prism groups only where a camera uses them (most
    # calibrations have neither): projection is a large share of the fit's time.
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    radial_slope = k1 + r2 * (2 * k2 + 3 * k3 * r2) if jacobian else None     # d radial / d r2
    if bool((dist[:, 5:8] != 0).any()):
        denominator = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
        radial = radial / denominator
        if jacobian:
            radial_slope = (radial_slope - radial * (k4 + r2 * (2 * k5 + 3 * k6 * r2))) / denominator
    xy2 = 2 * x * y
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
    if jacobian:
        cross = xy2 * radial_slope + 2 * (p1 * x + p2 * y)                    # d xd / d y = d yd / d x
        j = [radial + 2 * x * x * radial_slope + 2 * p1 * y + 6 * p2 * x, cross,
             cross, radial + 2 * y * y * radial_slope + 6 * p1 * y + 2 * p2 * x]
    if bool((dist[:, 8:12] != 0).any()):
        xd = xd + r2 * (s1 + r2 * s2)
        yd = yd + r2 * (s3 + r2 * s4)
        if jacobian:
            prism_x, prism_y = 2 * (s1 + 2 * s2 * r2), 2 * (s3 + 2 * s4 * r2)
            j = [j[0] + prism_x * x, j[1] + prism_x * y, j[2] + prism_y * x, j[3] + prism_y * y]
    out = torch.stack([xd, yd], -1)
    J = torch.stack(j, -1).unflatten(-1, (2, 2)) if jacobian else None
    if not bool((dist[:, 12:] != 0).any()):
        return out, J
    tilt = _tilt_matrix(dist[:, 12], dist[:, 13]).reshape(-1, *extra, 3, 3)
    v = (tilt @ torch.cat([out, torch.ones_like(xd)[..., None]], -1)[..., None])[..., 0]
    out = v[..., :2] / v[..., 2:]
    if jacobian:
        J = (tilt[..., :2, :2] - out[..., :, None] * tilt[..., 2:, :2]) / v[..., 2:, None] @ J
    return out, J


def project_points(X_world: torch.Tensor, cams: CameraTensors, distort: bool = True) -> torch.Tensor:
    """Pixel coordinates of world points in every camera, as cv2.projectPoints computes them.

    Args:
        X_world: [B, N, 3] or [N, 3] points in world units.
        cams: C cameras.
        distort: apply the lens distortion (False: the ideal pinhole).
    Returns:
        [B, C, N, 2] (or [C, N, 2]) pixel coordinates (u right, v down, pixel centres at integers).
        Like cv2 (which ignores K's skew) only fx, fy, cx, cy are used; points behind a camera
        project through the clamped depth, so check depth where that matters.
    """
    Xc = world_to_camera(X_world, cams)
    single = Xc.dim() == 3
    Xc = Xc[None] if single else Xc
    uv = _project_in_cameras(Xc.transpose(0, 1), cams.K, cams.dist if distort else None)[0].transpose(0, 1)
    return uv[0] if single else uv


def project_points_with_jacobian(X_world: torch.Tensor, cams: CameraTensors) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`project_points` of [B, N, 3] world points, [B, C, N, 2], and their Jacobian d pixel / d point
    [B, C, N, 2, 3] in closed form (autograd's forward mode took twice as long). Behind a camera,
    where the depth is clamped, the Jacobian has no depth term."""
    check_shape(X_world, "B N 3", "X_world")
    Xc = world_to_camera(X_world, cams)
    uv, J_cam = _project_in_cameras(Xc.transpose(0, 1), cams.K, cams.dist, jacobian=True)
    return uv.transpose(0, 1), J_cam.transpose(0, 1) @ cams.R[None, :, None]


def project_scattered_with_jacobian(X_world: torch.Tensor, camera: torch.Tensor,
                                    cams: CameraTensors) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of [n, 3] world points in its own camera ``camera`` [n] (indices into ``cams``): pixels [n, 2] as
    :func:`project_points` gives them, and d pixel / d point [n, 2, 3], for points scattered over views."""
    check_shape(X_world, "n 3", "X_world")
    R = cams.R[camera]
    Xc = (R @ X_world[..., None])[..., 0] + cams.t[camera]
    uv, J_cam = _project_in_cameras(Xc[:, None], cams.K[camera], cams.dist[camera], jacobian=True)
    return uv[:, 0], J_cam[:, 0] @ R


def _project_in_cameras(Xc: torch.Tensor, K: torch.Tensor, dist: torch.Tensor | None, jacobian: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Camera-frame points [C, ..., 3] of camera c with intrinsics K [C, 3, 3] and distortion [C, 14] (None: the
    ideal pinhole) -> pixels [C, ..., 2], and with ``jacobian`` d pixel / d camera-frame point [C, ..., 2, 3]."""
    depth = Xc[..., 2:]
    z = depth.clamp(min=MIN_DEPTH)
    xy = Xc[..., :2] / z
    extra = (1,) * (Xc.dim() - 2)
    focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1).reshape(-1, *extra, 2)
    centre = K[:, :2, 2].reshape(-1, *extra, 2)
    if not jacobian:
        return (xy if dist is None else distort_normalized(xy, dist)) * focal + centre, None
    distorted, J_lens = distort_with_jacobian(xy, dist)
    J_xy = focal[..., None] * J_lens / z[..., None]                                 # d uv / d (Xc_x, Xc_y)
    J_z = -(J_xy @ (xy * (depth > MIN_DEPTH))[..., None])                          # d uv / d Xc_z
    return distorted * focal + centre, torch.cat([J_xy, J_z], -1)


def near_far_from_points(X_world: torch.Tensor, cams: CameraTensors, near_factor: float = NEAR_FACTOR,
                         far_factor: float = FAR_FACTOR) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-camera clip planes that enclose a mesh with margins: [C] near and [C] far (world units).

    The depth range of ``X_world`` ([B, N, 3] or [N, 3]) in each camera, over all frames, widened
    to ``near_factor * min`` and ``far_factor * max``; detached (the planes are not optimised).
    """
    z = world_to_camera(X_world.detach(), cams)[..., 2]
    z = z if z.dim() == 3 else z[None]
    z_min = z.amin(dim=(0, 2)).clamp(min=MIN_DEPTH)
    z_max = z.amax(dim=(0, 2)).clamp(min=MIN_DEPTH)
    return z_min * near_factor, z_max * far_factor


def world_to_clip(X_world: torch.Tensor, cams: CameraTensors, near: torch.Tensor | float,
                  far: torch.Tensor | float, scale: float = 1.0, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Clip-space positions for nvdiffrast-style rasterisers, pinhole only (no lens distortion).

    Args:
        X_world: [B, N, 3] (or [N, 3]) world points.
        cams: C cameras; near, far: floats or [C] tensors, clip planes in world units along z.
        scale: render at ``scale`` times each camera's resolution (``scaled_intrinsics``).
        pad: (px, py) pixels added on each side of the (scaled) image, e.g. to hold what lens
            distortion pulls in from outside the frame; the canvas is ``(W + 2 px, H + 2 py)``.
    Returns:
        [B, C, N, 4] (or [C, N, 4]) clip coordinates (x, y, z, w), w = camera depth z. As in
        :func:`project_points`, K's skew is ignored.
        Rasterised at :func:`canvas_size`'s resolution, row j and column i are OpenCV pixel
        (i - px, j - py) of the scaled image.
    """
    Xc = world_to_camera(X_world, cams)
    single = Xc.dim() == 3
    Xc = Xc[None] if single else Xc
    K = scaled_intrinsics(cams.K, scale)
    W, H = canvas_size(cams, scale, pad)
    near_t = torch.as_tensor(near, device=Xc.device, dtype=Xc.dtype).expand(len(cams))
    far_t = torch.as_tensor(far, device=Xc.device, dtype=Xc.dtype).expand(len(cams))
    x, y, z = Xc.unbind(-1)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy = K[:, 0, 2, None] + pad[0], K[:, 1, 2, None] + pad[1]
    # Pixel centre convention: OpenCV pixel u has its centre at NDC (2u + 1)/W - 1; multiplied by w = z.
    x_clip = (2.0 / W) * (fx * x + cx * z) + (1.0 / W - 1.0) * z
    # The y "flip": OpenCV v grows downwards and maps to growing y_ndc, because nvdiffrast's output
    # row 0 is y_ndc = -1; hence rendered row j == OpenCV row j and no image is ever flipped.
    y_clip = (2.0 / H) * (fy * y + cy * z) + (1.0 / H - 1.0) * z
    # Depth: OpenGL's perspective mapping of z in [near, far] to z_ndc in [-1, 1] (w = z).
    n, f = near_t[:, None], far_t[:, None]
    z_clip = (f + n) / (f - n) * z - 2.0 * f * n / (f - n)
    clip = torch.stack([x_clip, y_clip, z_clip, z], -1)
    return clip[0] if single else clip


def canvas_size(cams: CameraTensors, scale: float = 1.0, pad: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(width, height) of the raster canvas: the cameras' common size at ``scale`` plus ``pad`` each side."""
    W, H = scaled_size(cams.common_size(), scale)
    return W + 2 * pad[0], H + 2 * pad[1]

