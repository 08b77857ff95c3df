"""Synthetic calibration shoots with known truth: a rig of cameras looking at a board in random poses.

Each image is rendered exactly through the lens: every (supersampled) pixel is undistorted
(cv2.undistortPoints with criteria), cast onto the board plane through the inverse board homography
``[r1 r2 t]^-1`` (Zhang 2000, eq. 2) and sampled from a board texture (cv2.remap); then area
downsampling, a Gaussian blur and pixel noise. Used by the tests and as a demo of ``calibrate``.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecap.calibrate.boards import Board
from facecap.camera.model import Calibration, Camera

__all__ = ["SyntheticShoot", "make_rig", "random_board_poses", "board_texture", "pixel_rays", "render_view",
           "write_shoot"]

SUPERSAMPLE = 2  # rendered pixels per image pixel and axis, before area downsampling
TEXTURE_PX_PER_SQUARE = 64


@dataclass(frozen=True)
class SyntheticShoot:
    """Truth of a synthetic shoot: ``calibration`` (world = first camera's frame, mm) and
    ``board_poses`` [F, 4, 4] T_world_board."""

    calibration: Calibration
    board: Board
    board_poses: np.ndarray


def _look_at(center: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera R, t of a camera at ``center`` looking at ``target`` with image y along world +y."""
    z = (target - center) / np.linalg.norm(target - center)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R, -R @ center


def make_rig(n_cameras: int, rng: np.random.Generator, image_size: tuple[int, int] = (480, 360),
             distance: float = 600.0, arc_deg: float = 70.0, dist: np.ndarray | None = None) -> Calibration:
    """``n_cameras`` on a horizontal arc of ``arc_deg`` at ``distance`` mm around the origin, looking at it,
    jittered; re-expressed with the first camera as the world. ``dist`` [5]: every camera's lens."""
    w, h = image_size
    cams = []
    for i, angle in enumerate(np.radians(np.linspace(-arc_deg / 2, arc_deg / 2, n_cameras))):
        center = distance * np.array([np.sin(angle), 0.0, -np.cos(angle)]) + rng.normal(0, 20.0, 3)
        R, t = _look_at(center, rng.normal(0, 15.0, 3))
        f = w * (0.9 + 0.2 * rng.random())
        K = np.array([[f, 0, w / 2 - 0.5 + rng.normal(0, 4)], [0, f, h / 2 - 0.5 + rng.normal(0, 4)], [0, 0, 1]])
        lens = np.zeros(5) if dist is None else np.asarray(dist, np.float64)
        cams.append((f"cam{i:02d}", K, lens, R, t))
    R0, t0 = cams[0][3], cams[0][4]
    out = []
    for name, K, lens, R, t in cams:
        R_new = R @ R0.T
        out.append(Camera(name, image_size, K, lens, R_new, t - R_new @ t0))
    return Calibration("mm", tuple(out))


def _fully_visible(calib: Calibration, points_world: np.ndarray, margin: float) -> int:
    """How many cameras see all of ``points_world`` [N, 3] in front of them and ``margin`` px inside the image."""
    count = 0
    for cam in calib.cameras:
        if ((cam.R @ points_world.T)[2] + cam.t[2] <= 0).any():
            continue
        px = cv2.projectPoints(points_world, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0].reshape(-1, 2)
        count += bool((px >= margin).all() and (px[:, 0] <= cam.width - 1 - margin).all()
                      and (px[:, 1] <= cam.height - 1 - margin).all())
    return count


def random_board_poses(n: int, board: Board, calib: Calibration, rng: np.random.Generator,
                       tilt_deg: float = 30.0, distance: float = 600.0, spread: float = 30.0,
                       min_cameras: int = 2, margin_px: float = 8.0, max_tries: int = 10_000) -> np.ndarray:
    """[n, 4, 4] T_world_board: the board ``distance`` mm in front of the rig, facing it, tilted up to
    ``tilt_deg`` about each axis and shifted by ``spread`` mm (standard deviation); only poses that
    ``min_cameras`` cameras see whole (``margin_px`` inside the image) are kept."""
    centers = np.array([c.center for c in calib.cameras])
    view_dirs = np.array([c.R[2] for c in calib.cameras])
    mean_dir = view_dirs.mean(0) / np.linalg.norm(view_dirs.mean(0))
    focus = centers.mean(0) + mean_dir * distance
    facing, _ = _look_at(focus - mean_dir, focus)  # board axes as a camera's: x right, y down, z away
    obj = board.object_points()
    half = (obj.max(0) + obj.min(0)) / 2
    poses = []
    for _ in range(max_tries):
        R = facing.T @ cv2.Rodrigues(np.radians(tilt_deg) * rng.uniform(-1, 1, 3))[0]
        t = focus + rng.normal(0, spread, 3) - R @ half
        if _fully_visible(calib, obj @ R.T + t, margin_px) >= min(min_cameras, len(calib.cameras)):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R, t
            poses.append(T)
            if len(poses) == n:
                return np.stack(poses)
    raise ValueError(f"found only {len(poses)} of {n} board poses visible in {min_cameras} cameras; "
                     f"move the board (distance, spread) or the cameras")


def board_texture(board: Board) -> tuple[np.ndarray, float, np.ndarray]:
    """(texture [H, W] uint8, px per board unit, [2] board coordinates of the texture's corner (0, 0) edge).

    Chessboard: (cols + 1) x (rows + 1) squares starting one square before the first inner corner;
    ChArUco: CharucoBoard.generateImage; both with a one-square white margin.
    """
    s = TEXTURE_PX_PER_SQUARE / board.square
    pad = TEXTURE_PX_PER_SQUARE
    if board.type == "charuco":
        size = (board.cols * TEXTURE_PX_PER_SQUARE, board.rows * TEXTURE_PX_PER_SQUARE)
        image, origin = board.charuco().generateImage(size, marginSize=0), np.zeros(2)
    elif board.type == "chessboard":
        i, j = np.mgrid[0:(board.rows + 1) * TEXTURE_PX_PER_SQUARE, 0:(board.cols + 1) * TEXTURE_PX_PER_SQUARE]
        image = np.where((i // TEXTURE_PX_PER_SQUARE + j // TEXTURE_PX_PER_SQUARE) % 2 == 0, 0, 255).astype(np.uint8)
        origin = np.full(2, -board.square)
    else:
        raise ValueError(f"synthetic rendering supports chessboard and charuco boards, not {board.type}")
    image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    return image, s, origin - pad / s


def pixel_rays(camera: Camera) -> np.ndarray:
    """[H*k, W*k, 2] undistorted normalised coordinates of every supersampled pixel centre (k = SUPERSAMPLE)."""
    w, h = camera.image_size
    k = SUPERSAMPLE
    v, u = np.mgrid[0:h * k, 0:w * k].astype(np.float64)
    px = np.stack([(u + 0.5) / k - 0.5, (v + 0.5) / k - 0.5], axis=-1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-10)
    return cv2.undistortPoints(px, camera.K, camera.dist, R=None, P=None, criteria=crit).reshape(h * k, w * k, 2)


def render_view(camera: Camera, T_cam_board: np.ndarray, texture: tuple[np.ndarray, float, np.ndarray],
                rng: np.random.Generator, noise: float = 2.0, blur_sigma: float = 0.6,
                rays: np.ndarray | None = None) -> np.ndarray:
    """[H, W] uint8 grey image of the textured board seen by ``camera`` (lens distortion included).

    rays: pixel_rays(camera), to reuse across views of one camera.
    """
    image, s, origin = texture
    rays = pixel_rays(camera) if rays is None else rays
    H = np.column_stack([T_cam_board[:3, 0], T_cam_board[:3, 1], T_cam_board[:3, 3]])
    plane = np.einsum("ij,hwj->hwi", np.linalg.inv(H), np.concatenate([rays, np.ones(rays.shape[:2] + (1,))], -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        tex = ((plane[..., :2] / plane[..., 2:] - origin) * s - 0.5).astype(np.float32)
    tex[(plane[..., 2] <= 0) | ~np.isfinite(tex).all(-1)] = -1e4  # rays that miss the board's front side
    sampled = cv2.remap(image, tex[..., 0], tex[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=128)
    small = cv2.resize(sampled, camera.image_size, interpolation=cv2.INTER_AREA).astype(np.float64)
    small = cv2.GaussianBlur(small, (0, 0), blur_sigma) + rng.normal(0, noise, small.shape)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def write_shoot(shoot: SyntheticShoot, folder: Path, rng: np.random.Generator, noise: float = 2.0) -> list[Path]:
    """Render every camera's view of every board pose into ``folder/<camera>/<frame>.png``; the camera folders."""
    texture = board_texture(shoot.board)
    dirs = []
    for cam in shoot.calibration.cameras:
        d = Path(folder) / cam.name
        d.mkdir(parents=True, exist_ok=True)
        T_cam_world = np.eye(4)
        T_cam_world[:3, :3], T_cam_world[:3, 3] = cam.R, cam.t
        rays = pixel_rays(cam)
        for f, T_world_board in enumerate(shoot.board_poses):
            image = render_view(cam, T_cam_world @ T_world_board, texture, rng, noise, rays=rays)
            cv2.imwrite(str(d / f"{f:04d}.png"), image)
        dirs.append(d)
    return dirs
