"""Face crops as virtual cameras: a square, centred view of the face cut from a view by the landmarks' box.

A crop is the image of a virtual pinhole camera that shares the real camera's centre, looks along the
ray through the box's centre, and whose focal length makes the box (times ``margin``) fill the crop's
``size`` pixels. Resampling through the exact ray mapping (crop pixel -> ray -> rotation into the source
camera -> its lens distortion -> source pixel) makes every crop a perspective-correct, centred view
wherever the face lies in the frame. Training renders are drawn straight through such cameras, so the
network sees the same geometry in them as in a take's frames; the head pose it predicts is in the crop
camera's frame and goes to the world through the camera's pose (:mod:`facecap.learn.fusion`).
"""

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facecap.camera.torch_camera import CameraTensors, distort_normalized
from facecap.camera.undistort import undistort_pixels
from facecap.checks import check_shape
from facecap.errors import ShapeError
from facecap.geometry.rotations import axis_angle_to_matrix

__all__ = ["CropCameras", "landmark_box", "rotation_onto_axis", "crop_cameras", "crop_pixel_rays", "source_pixels",
           "cut_crops", "resample_crops"]

# cut_crops computes the crop-to-frame map at this many positions per side and interpolates the rest: a
# bilinear step over a few crop pixels of a smooth map stays far below a pixel.
CUT_MAP_NODES = 20


@dataclass(frozen=True)
class CropCameras:
    """N virtual crop cameras (pinhole, principal point at the crop's centre).

    Attributes:
        R: [N, 3, 3] float64 world-to-crop rotation. centre: [N, 3] float64 camera centres, world units.
        focal: [N] float64 focal length, crop pixels. size: S, the crop's width and height in pixels.
    """

    R: torch.Tensor
    centre: torch.Tensor
    focal: torch.Tensor
    size: int

    def __len__(self) -> int:
        return self.R.shape[0]

    def select(self, index: torch.Tensor | np.ndarray) -> "CropCameras":
        """The crop cameras at ``index`` [M] (int), in that order."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.R.device)
        return CropCameras(self.R[index], self.centre[index], self.focal[index], self.size)

    @property
    def t(self) -> torch.Tensor:
        """[N, 3] world-to-crop translation (``x_crop = R x_world + t``)."""
        return -(self.R @ self.centre[..., None])[..., 0]

    @property
    def K(self) -> torch.Tensor:
        """[N, 3, 3] intrinsics."""
        K = torch.zeros(len(self), 3, 3, dtype=self.focal.dtype, device=self.focal.device)
        K[:, 0, 0] = K[:, 1, 1] = self.focal
        K[:, :2, 2] = (self.size - 1) / 2
        K[:, 2, 2] = 1.0
        return K

    def as_camera_tensors(self, dtype: torch.dtype = torch.float32) -> CameraTensors:
        """The crop cameras as :class:`CameraTensors` (no distortion), to render through."""
        n = len(self)
        sizes = torch.full((n, 2), self.size, dtype=torch.int64, device=self.R.device)
        return CameraTensors(K=self.K.to(dtype), dist=torch.zeros(n, 14, dtype=dtype, device=self.R.device),
                             R=self.R.to(dtype), t=self.t.to(dtype), image_sizes=sizes,
                             names=tuple(f"crop{i}" for i in range(n)))


def landmark_box(points: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The square box of each view's landmarks.

    Args:
        points: [..., L, 2] px. confidence: [..., L]; points at 0 are left out.
    Returns:
        (centre [..., 2] px, side [...] px, found [...] bool: at least 3 confident points).
    """
    check_shape(points, "* L 2", "points")
    seen = confidence > 0
    lo = np.where(seen[..., None], points, np.inf).min(-2)
    hi = np.where(seen[..., None], points, -np.inf).max(-2)
    found = seen.sum(-1) >= 3
    lo, hi = np.where(found[..., None], lo, 0.0), np.where(found[..., None], hi, 0.0)
    return (lo + hi) / 2, (hi - lo).max(-1), found


def rotation_onto_axis(d: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] the smallest rotations taking the unit vectors ``d`` [N, 3] onto +z (the image's axes turn
    as little as possible, so the crop stays upright with its camera)."""
    z = torch.zeros_like(d)
    z[:, 2] = 1.0
    axis = torch.linalg.cross(d, z, dim=-1)
    s = axis.norm(dim=-1, keepdim=True)
    angle = torch.atan2(s, d[:, 2:])
    return axis_angle_to_matrix(axis * torch.where(s > 1e-12, angle / s.clamp_min(1e-12), torch.ones_like(s)))


def crop_cameras(cams: CameraTensors, centre_px: np.ndarray, side_px: np.ndarray, size: int,
                 margin: float) -> CropCameras:
    """The crop camera of each of N boxes, each in its own camera.

    Args:
        cams: N cameras (one per box; repeat a camera for several boxes).
        centre_px: [N, 2] box centres, distorted pixels. side_px: [N] box sides, px.
        size: crop pixels S. margin: the crop spans ``margin`` times the box.
    """
    N = len(cams)
    check_shape(centre_px, f"{N} 2", "centre_px")
    check_shape(side_px, f"{N}", "side_px")
    K, dist = cams.K.double().cpu().numpy(), cams.dist.double().cpu().numpy()
    rays = np.stack([np.append(undistort_pixels(centre_px[i:i + 1], K[i], dist[i])[0][0], 1.0) for i in range(N)])
    d = torch.nn.functional.normalize(torch.as_tensor(rays), dim=-1)
    J = rotation_onto_axis(d)
    R_cam = cams.R.double().cpu()
    centre = -(R_cam.transpose(1, 2) @ cams.t.double().cpu()[..., None])[..., 0]
    focal_cam = torch.as_tensor((K[:, 0, 0] + K[:, 1, 1]) / 2)
    # The box's side in normalised coordinates is side / f; the crop shows margin times that.
    focal = size * focal_cam / (margin * torch.as_tensor(side_px, dtype=torch.float64))
    return CropCameras(R=J @ R_cam, centre=centre, focal=focal, size=size)


def crop_pixel_rays(crops: CropCameras, nodes: int | None = None) -> torch.Tensor:
    """[N, n, n, 3] direction of the rays in each crop camera's frame (z = 1), in the crops' dtype: of every
    crop pixel (n = S), or of ``nodes`` pixel positions per side spread evenly from the first pixel to the last."""
    S = crops.size
    n = S if nodes is None else nodes
    px = torch.linspace(-(S - 1) / 2, (S - 1) / 2, n, dtype=crops.R.dtype, device=crops.R.device)
    f = crops.focal[:, None, None]
    x = (px[None, None, :] / f).expand(-1, n, n)
    y = (px[None, :, None] / f).expand(-1, n, n)
    return torch.stack([x, y, torch.ones_like(x)], -1)


def source_pixels(crops: CropCameras, source: CameraTensors, nodes: int | None = None) -> torch.Tensor:
    """[N, S, S, 2] pixel (u, v) in ``source`` camera n that crop n's pixel (x, y) shows (the crops' dtype).

    The source shares the crop's centre (a real camera, or a wider render canvas); its lens distortion
    is applied, so the positions are in the recorded image. With ``nodes``, the map is computed at
    nodes x nodes crop positions (:func:`crop_pixel_rays`) and interpolated bilinearly between them: the map
    is smooth (a rotation, the lens), and the lens model costs far more per point than the interpolation.
    """
    if len(source) != len(crops):
        raise ShapeError(f"{len(crops)} crops need as many source cameras, got {len(source)}")
    source = source.to(crops.R.device, crops.R.dtype)
    to_source = source.R @ crops.R.transpose(1, 2)                              # crop frame -> source frame
    rays = torch.einsum("nij,nyxj->nyxi", to_source, crop_pixel_rays(crops, nodes))
    xy = rays[..., :2] / rays[..., 2:].clamp_min(1e-9)
    if bool((source.dist != 0).any()):
        xy = distort_normalized(xy, source.dist)
    K = source.K
    f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None, None]
    pixels = xy * f + K[:, None, None, :2, 2]
    if nodes is None or nodes == crops.size:
        return pixels
    return F.interpolate(pixels.permute(0, 3, 1, 2), size=(crops.size, crops.size), mode="bilinear",
                         align_corners=True).permute(0, 2, 3, 1)


def _shown_region(where: np.ndarray, shrink: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """((x0, y0), (x1, y1)) of the image region that source pixels ``where`` [S, S, 2] fall in, plus a margin:
    whole blocks of ``shrink`` pixels from a multiple of it, at least one block, inside the image."""
    size = np.array([width, height])
    lo = np.clip(np.floor(where.reshape(-1, 2).min(0)) - shrink, 0, size - shrink) // shrink * shrink
    hi = np.clip(np.ceil(where.reshape(-1, 2).max(0)) + 2 * shrink, lo + shrink, size)
    return lo.astype(int), (lo + (hi - lo) // shrink * shrink).astype(int)


def cut_crops(images: list[np.ndarray], crops: CropCameras, source: CameraTensors) -> np.ndarray:
    """[N, S, S, 3] uint8 crops of ``images`` (N [H, W, 3] uint8, image n seen by source camera n).

    The part of each image the crop shows is first shrunk by a whole factor with area averaging, so that the
    resampling step is at most about one source pixel per crop pixel (bilinear taps alone would alias the
    face's detail).
    """
    if len(images) != len(crops):
        raise ShapeError(f"{len(crops)} crops need as many images, got {len(images)}")
    where = source_pixels(crops, source, min(CUT_MAP_NODES, crops.size)).numpy()
    out = np.empty((len(images), crops.size, crops.size, 3), dtype=np.uint8)
    for n, image in enumerate(images):
        spacing = np.linalg.norm(where[n, 0, 1] - where[n, 0, 0])                    # source px per crop px
        shrink = max(1, int(spacing))
        (x0, y0), (x1, y1) = _shown_region(where[n], shrink, image.shape[1], image.shape[0])
        region = image[y0:y1, x0:x1]
        if shrink > 1:
            region = cv2.resize(region, (region.shape[1] // shrink, region.shape[0] // shrink),
                                interpolation=cv2.INTER_AREA)
        # A shrunk pixel i covers source pixels x0 + shrink * i .. x0 + shrink * (i + 1) - 1.
        grid = ((where[n] - [x0, y0] + 0.5) / shrink - 0.5).astype(np.float32)
        out[n] = cv2.remap(region, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def resample_crops(canvas: torch.Tensor, grid_px: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of canvases [N, 3, H, W] at pixel positions [N, S, S, 2] -> [N, 3, S, S]."""
    H, W = canvas.shape[-2:]
    scale = canvas.new_tensor([2.0 / (W - 1), 2.0 / (H - 1)])
    grid = (grid_px.to(canvas.dtype) * scale - 1.0)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="border", align_corners=True)
