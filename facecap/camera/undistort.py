"""Lens distortion for rendering: render an ideal pinhole image, then distort it by a fixed remap.

Strategy (chosen for facecap): the rasteriser only knows pinhole cameras, so the renderer draws
each view with the camera's K on a slightly larger canvas and then resamples it with a per-camera
grid: the distorted output pixel (u_d, v_d) reads the pinhole image at the ideal position of the
ray that lands on (u_d, v_d). The result lines up pixel for pixel with the raw frames and with
cv2.projectPoints, so frames, landmarks and photometric losses all stay in the recorded images
and nothing the camera saw is resampled. The warp is differentiable w.r.t. the image (bilinear
``grid_sample``); the grid is a constant, computed once per camera set and scale (intrinsics
are not optimised through it).

The opposite strategy, undistorting the recorded frames once and comparing them with pinhole
renders, is :func:`undistort_image` (cv2.initUndistortRectifyMap + cv2.remap, keeping K).
"""

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facecap.camera.model import Camera
from facecap.camera.torch_camera import CameraTensors, distort_with_jacobian, scaled_intrinsics, scaled_size
from facecap.checks import check_shape

__all__ = ["LensWarp", "undistort_pixels", "undistort_image"]

log = logging.getLogger(__name__)

# Newton steps that polish cv2.undistortPoints' fixed-point estimate (it converges slowly for strong lenses).
NEWTON_STEPS = 4
# Points whose cv2 estimate already reprojects within this many pixels skip the Newton polish.
NEWTON_SKIP_PX = 1e-9
# A pixel whose ideal position still reprojects this far (px) from where it should is reported.
RESIDUAL_WARN_PX = 1e-3
# The canvas may grow by at most this fraction of the image on each side (guards wild lens models).
MAX_PAD_FRACTION = 0.5
# Extra canvas pixels beyond the farthest sample, so that bilinear taps stay inside.
PAD_MARGIN_PX = 2


def undistort_pixels(pixels: np.ndarray, K: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ideal normalised coordinates of distorted pixels: the inverse of OpenCV's distortion.

    Args:
        pixels: [N, 2] float64 distorted pixel coordinates. K: [3, 3]. dist: [D] OpenCV coefficients.
    Returns:
        ([N, 2] normalised (x/z, y/z), [N] reprojection residual in pixels). cv2.undistortPoints gives
        the start, then Newton steps on the projection's own model, with its exact Jacobian.
    """
    pts = np.ascontiguousarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)
    xy = cv2.undistortPoints(pts, K, dist if len(dist) else None, criteria=criteria).reshape(-1, 2)
    d14 = np.zeros(14)
    d14[: len(dist)] = dist
    dist_t = torch.as_tensor(d14, dtype=torch.float64)[None]
    f, c = np.array([K[0, 0], K[1, 1]]), K[:2, 2]
    target = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)

    def project(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels [M, 2] of normalised points and their Jacobian [M, 2, 2]."""
        distorted, jac = distort_with_jacobian(torch.as_tensor(points)[None], dist_t)
        return distorted[0].numpy() * f + c, jac[0].numpy() * f[:, None]

    todo = np.arange(len(target))
    for _ in range(NEWTON_STEPS):
        pixels_now, jac = project(xy[todo])
        r = pixels_now - target[todo]
        needs = np.linalg.norm(r, axis=-1) > NEWTON_SKIP_PX
        todo, r, jac = todo[needs], r[needs], jac[needs]
        if not len(todo):
            break
        det = np.linalg.det(jac)
        ok = np.abs(det) > 0
        xy[todo[ok]] -= np.linalg.solve(jac[ok], r[ok, :, None])[..., 0]
    residual = np.linalg.norm(project(xy)[0] - target, axis=-1)
    return xy, residual


@dataclass(frozen=True)
class LensWarp:
    """Per-camera resampling grids from a padded pinhole canvas to the distorted images.

    Attributes:
        grid: [C, H, W, 2] ``grid_sample`` coordinates (align_corners=False) into the canvas for
            every pixel of the distorted, scaled image (H, W).
        pad: (px, py) canvas pixels added on each side of the scaled image; render with
            ``world_to_clip(..., scale=scale, pad=pad)``.
        scale: the render scale the grid was made for.
    """

    grid: torch.Tensor
    pad: tuple[int, int]
    scale: float

    @classmethod
    def from_cameras(cls, cams: CameraTensors, scale: float = 1.0) -> "LensWarp":
        """Grids for ``cams`` (sharing one image size) rendered at ``scale``; float64 maths on the CPU."""
        W0, H0 = cams.common_size()
        Ws, Hs = scaled_size((W0, H0), scale)
        us, vs = np.meshgrid(np.arange(Ws, dtype=np.float64), np.arange(Hs, dtype=np.float64))
        # Scaled pixel centres back to full-resolution pixels: x = (x' + 0.5) / s - 0.5.
        full = np.stack([(us + 0.5) / scale - 0.5, (vs + 0.5) / scale - 0.5], -1).reshape(-1, 2)
        K_all = cams.K.detach().cpu().double().numpy()
        K_s = scaled_intrinsics(cams.K.detach().cpu().double(), scale).numpy()
        dist_all = cams.dist.detach().cpu().double().numpy()
        ideal = []
        for name, K, K_scaled, dist in zip(cams.names, K_all, K_s, dist_all):
            if not dist.any():
                xy = (full - K[:2, 2]) / np.diag(K)[:2]
            else:
                xy, residual = undistort_pixels(full, K, dist)
                bad = residual > RESIDUAL_WARN_PX
                if bad.any():
                    log.warning("camera %s: %d pixels have no exact ideal position (lens model residual up to "
                                "%.3g px)", name, int(bad.sum()), float(residual.max()))
            ideal.append(xy * np.diag(K_scaled)[:2] + K_scaled[:2, 2])     # pinhole px in the scaled image
        ideal_px = np.stack(ideal)                                          # [C, Hs*Ws, 2]
        finite = ideal_px[np.isfinite(ideal_px).all(-1)]
        over_x = max(0.0, -finite[:, 0].min(), finite[:, 0].max() - (Ws - 1)) if len(finite) else 0.0
        over_y = max(0.0, -finite[:, 1].min(), finite[:, 1].max() - (Hs - 1)) if len(finite) else 0.0
        pad = (min(math.ceil(over_x) + PAD_MARGIN_PX, math.ceil(MAX_PAD_FRACTION * Ws)),
               min(math.ceil(over_y) + PAD_MARGIN_PX, math.ceil(MAX_PAD_FRACTION * Hs)))
        Wc, Hc = Ws + 2 * pad[0], Hs + 2 * pad[1]
        # Canvas pixel centre (i) -> grid_sample's normalised coordinate (2 i + 1) / W - 1 (align_corners=False).
        grid = np.stack([(2 * (ideal_px[..., 0] + pad[0]) + 1) / Wc - 1,
                         (2 * (ideal_px[..., 1] + pad[1]) + 1) / Hc - 1], -1)
        grid = np.nan_to_num(grid, nan=-2.0, posinf=-2.0, neginf=-2.0).reshape(len(cams), Hs, Ws, 2)
        return cls(torch.as_tensor(grid, device=cams.device, dtype=cams.dtype), pad, scale)

    def apply(self, images: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """Distort canvas images: [N, Hc, Wc, ch] -> [N, H, W, ch], N a multiple of C (frame-major,
        i.e. row ``b * C + c`` is camera c); samples outside the canvas read 0."""
        C, H, W, _ = self.grid.shape
        N = check_shape(images, "N Hc Wc ch", "images")["N"]
        if N % C:
            raise ValueError(f"images: batch {N} is not a multiple of the {C} cameras of the warp")
        grid = self.grid.to(device=images.device, dtype=images.dtype).repeat(N // C, 1, 1, 1)
        out = F.grid_sample(images.permute(0, 3, 1, 2), grid, mode=mode, padding_mode="zeros", align_corners=False)
        return out.permute(0, 2, 3, 1)


def undistort_image(image: np.ndarray, camera: Camera, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The pinhole image of ``camera`` with the same K: [H, W, ch] or [H, W] in, same shape out.

    cv2.initUndistortRectifyMap(K, dist, None, K, size, CV_32FC1) then cv2.remap; pixels with no
    source read 0.
    """
    if image.shape[:2] != (camera.height, camera.width):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but camera {camera.name} is "
                         f"{camera.width}x{camera.height}")
    dist = camera.dist if len(camera.dist) else None
    map_x, map_y = cv2.initUndistortRectifyMap(camera.K, dist, None, camera.K, camera.image_size,
                                               cv2.CV_32FC1)
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT)
