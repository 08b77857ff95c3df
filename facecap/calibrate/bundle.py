"""Joint bundle adjustment of every camera and board pose (and optionally intrinsics), with view rejection.

Unknowns: T_cam_world of every camera but the root (world) camera, T_world_board of every instant,
and each camera's free intrinsics. Residuals: reprojection errors of every detected board point in px,
with OpenCV's distortion model (cv2.projectPoints: radial k1..k6 rational, tangential p1 p2). Solved
by robust Levenberg-Marquardt (lm.py) on a sparse finite-difference Jacobian.
After each solve, views whose RMS exceeds max(reject_factor x median, reject_min_px) are dropped and
the problem re-solved, up to ``max_rounds`` times.
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial.transform import Rotation

from facecap.calibrate.config import BundleConfig, IntrinsicsConfig
from facecap.calibrate.intrinsics import DIST_LENGTH
from facecap.calibrate.lm import levenberg_marquardt
from facecap.errors import FacecapError

__all__ = ["Observations", "BundleResult", "project", "bundle_adjust", "solve_rig", "view_rms"]

log = logging.getLogger(__name__)

N_INTR = 12  # fx fy cx cy k1 k2 p1 p2 k3 k4 k5 k6
TANGENTIAL = (6, 7)
FD_STEP = 1e-7  # relative forward-difference step (about sqrt of float64 epsilon)


@dataclass(frozen=True)
class Observations:
    """Every detected board point, flattened: M points in V views.

    Attributes:
        cam, frame, view: [M] int64 camera index, instant index, view index.
        obj: [M, 3] float64 board-frame points (board units). px: [M, 2] float64 detected pixels.
    """

    cam: np.ndarray
    frame: np.ndarray
    view: np.ndarray
    obj: np.ndarray
    px: np.ndarray

    def subset(self, keep: np.ndarray) -> "Observations":
        return Observations(self.cam[keep], self.frame[keep], self.view[keep], self.obj[keep], self.px[keep])


@dataclass
class BundleResult:
    """Solved rig. K: [C, 3, 3]; dist: [C, D]; cam_poses: [C, 4, 4] T_cam_world; frame_poses: [F, 4, 4]
    T_world_board (NaN for instants left without views); residuals: [M, 2] px of the kept observations
    ``obs``; rejected: view index -> RMS px when rejected."""

    K: np.ndarray
    dist: np.ndarray
    cam_poses: np.ndarray
    frame_poses: np.ndarray
    obs: Observations
    residuals: np.ndarray
    rejected: dict[int, float] = field(default_factory=dict)

    @property
    def rms_px(self) -> float:
        return float(np.sqrt(np.mean(np.sum(self.residuals ** 2, axis=1))))


def project(points_cam: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """[M, 2] pixels of camera-frame points [M, 3] with per-point intrinsics [M, 12]
    (fx fy cx cy k1 k2 p1 p2 k3 k4 k5 k6), the model of cv2.projectPoints."""
    z = points_cam[:, 2]
    x, y = points_cam[:, 0] / z, points_cam[:, 1] / z
    fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6 = intr.T
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([fx * xd + cx, fy * yd + cy], axis=1)


def _pack_intrinsics(K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    intr = np.zeros((len(K), N_INTR))
    intr[:, :4] = np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], axis=1)
    intr[:, 4:4 + dist.shape[1]] = dist
    return intr


def _free_mask(config: IntrinsicsConfig, refine: bool) -> np.ndarray:
    free = np.zeros(N_INTR, dtype=bool)
    if refine:
        free[[0, 2, 3]] = True
        free[1] = not config.fix_aspect
        free[4:4 + DIST_LENGTH[config.distortion]] = True
        if config.zero_tangential:
            free[list(TANGENTIAL)] = False
    return free


def _poses_to_params(T: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(T[:, :3, :3]).as_rotvec(), T[:, :3, 3]], axis=1)


def _params_to_poses(p: np.ndarray) -> np.ndarray:
    T = np.tile(np.eye(4), (len(p), 1, 1))
    T[:, :3, :3] = Rotation.from_rotvec(p[:, :3]).as_matrix()
    T[:, :3, 3] = p[:, 3:]
    return T


def view_rms(obs: Observations, residuals: np.ndarray) -> dict[int, float]:
    """view index -> sqrt(mean squared point error) px, OpenCV's perViewErrors definition."""
    sq = np.sum(residuals ** 2, axis=1)
    views, inverse = np.unique(obs.view, return_inverse=True)
    sums = np.bincount(inverse, weights=sq)
    counts = np.bincount(inverse)
    return {int(v): float(np.sqrt(s / n)) for v, s, n in zip(views, sums, counts)}


def _jacobian_columns(obs: Observations, frame_col: np.ndarray, n_cam_p: int, n_frame_p: int,
                      n_free: int) -> np.ndarray:
    """[M, G] the parameter column of group g that point m depends on (-1: none).

    Groups are the k-th parameter of every camera pose, of every board pose and of every camera's
    intrinsics: each point sees one camera and one board, so a group's columns never share a row and a
    whole group is differentiated with one residual evaluation (Curtis-Powell-Reid column grouping).
    """
    six, intr = np.arange(6), np.arange(n_free)
    return np.concatenate([
        np.where(obs.cam[:, None] > 0, 6 * (obs.cam[:, None] - 1) + six, -1),
        n_cam_p + 6 * frame_col[obs.frame][:, None] + six,
        n_cam_p + n_frame_p + obs.cam[:, None] * n_free + intr], axis=1)


def _grouped_jacobian(fun, x: np.ndarray, cols: np.ndarray, n_params: int) -> csr_matrix:
    """[2M, P] forward-difference Jacobian of ``fun`` in G evaluations (see _jacobian_columns)."""
    f0 = fun(x)
    m = len(cols)
    data = np.zeros((m, 2, cols.shape[1]))
    for g in range(cols.shape[1]):
        active = cols[:, g][cols[:, g] >= 0]
        h = FD_STEP * np.maximum(1.0, np.abs(x))
        step = np.zeros_like(x)
        step[np.unique(active)] = h[np.unique(active)]
        diff = (fun(x + step) - f0).reshape(m, 2)
        valid = cols[:, g] >= 0
        data[valid, :, g] = diff[valid] / step[cols[valid, g]][:, None]
    rows = np.repeat(np.arange(2 * m).reshape(m, 2, 1), cols.shape[1], axis=2)
    colidx = np.repeat(cols[:, None, :], 2, axis=1)
    valid = colidx >= 0
    return csr_matrix((data[valid], (rows[valid], colidx[valid])), shape=(2 * m, n_params))


def bundle_adjust(obs: Observations, K: np.ndarray, dist: np.ndarray, cam_poses: np.ndarray, frame_poses: np.ndarray,
                  intr_config: IntrinsicsConfig, config: BundleConfig) -> BundleResult:
    """One robust least-squares solve from the given start (camera 0 stays the world frame)."""
    n_cam, n_frame = len(K), len(frame_poses)
    free = _free_mask(intr_config, config.refine_intrinsics)
    n_free = int(free.sum())
    intr0 = _pack_intrinsics(K, dist)
    aspect = intr0[:, 1] / intr0[:, 0]
    used_frames = np.unique(obs.frame)
    frame_col = np.full(n_frame, -1)
    frame_col[used_frames] = np.arange(len(used_frames))
    n_cam_p, n_frame_p = 6 * (n_cam - 1), 6 * len(used_frames)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cams = np.vstack([np.zeros((1, 6)), x[:n_cam_p].reshape(-1, 6)])
        frames = x[n_cam_p:n_cam_p + n_frame_p].reshape(-1, 6)
        intr = intr0.copy()
        intr[:, free] = x[n_cam_p + n_frame_p:].reshape(n_cam, n_free)
        if intr_config.fix_aspect:
            intr[:, 1] = intr[:, 0] * aspect
        return cams, frames, intr

    def residuals(x: np.ndarray) -> np.ndarray:
        cams, frames, intr = unpack(x)
        Rc, Rf = Rotation.from_rotvec(cams[:, :3]).as_matrix(), Rotation.from_rotvec(frames[:, :3]).as_matrix()
        f = frame_col[obs.frame]
        Xw = np.einsum("mij,mj->mi", Rf[f], obs.obj) + frames[f, 3:]
        Xc = np.einsum("mij,mj->mi", Rc[obs.cam], Xw) + cams[obs.cam, 3:]
        return (project(Xc, intr[obs.cam]) - obs.px).ravel()

    cols = _jacobian_columns(obs, frame_col, n_cam_p, n_frame_p, n_free)
    n_params = n_cam_p + n_frame_p + n_cam * n_free
    x0 = np.concatenate([_poses_to_params(cam_poses[1:]).ravel(),
                         _poses_to_params(frame_poses[used_frames]).ravel(), intr0[:, free].ravel()])
    sol = levenberg_marquardt(residuals, lambda x: _grouped_jacobian(residuals, x, cols, n_params), x0,
                              config.loss, config.loss_scale_px)
    cams, frames, intr = unpack(sol.x)
    K_out = np.tile(np.eye(3), (n_cam, 1, 1))
    K_out[:, 0, 0], K_out[:, 1, 1], K_out[:, 0, 2], K_out[:, 1, 2] = intr[:, :4].T
    frame_out = np.full((n_frame, 4, 4), np.nan)
    frame_out[used_frames] = _params_to_poses(frames)
    return BundleResult(K_out, intr[:, 4:4 + dist.shape[1]].copy(), _params_to_poses(cams), frame_out, obs,
                        sol.residuals.reshape(-1, 2))


def solve_rig(obs: Observations, K: np.ndarray, dist: np.ndarray, cam_poses: np.ndarray, frame_poses: np.ndarray,
              intr_config: IntrinsicsConfig, config: BundleConfig, camera_names: list[str]) -> BundleResult:
    """bundle_adjust, then reject views over max(reject_factor x median view RMS, reject_min_px) and re-solve.

    Raises FacecapError when rejection leaves a camera with fewer than ``intr_config.min_views`` views.
    """
    rejected: dict[int, float] = {}
    result = bundle_adjust(obs, K, dist, cam_poses, frame_poses, intr_config, config)
    for round_ in range(config.max_rounds):
        rms = view_rms(result.obs, result.residuals)
        limit = max(config.reject_factor * float(np.median(list(rms.values()))), config.reject_min_px)
        bad = {v: e for v, e in rms.items() if e > limit}
        if not bad:
            break
        rejected.update(bad)
        log.info("round %d: rejecting %d views over %.3f px", round_ + 1, len(bad), limit)
        keep = ~np.isin(result.obs.view, list(bad))
        kept = result.obs.subset(keep)
        for c, name in enumerate(camera_names):
            n_views = len(np.unique(kept.view[kept.cam == c]))
            if n_views < intr_config.min_views:
                raise FacecapError(f"camera '{name}': only {n_views} views are left after rejecting views over "
                                   f"{limit:.2f} px; need {intr_config.min_views} (intrinsics.min_views)")
        result = bundle_adjust(kept, result.K, result.dist, result.cam_poses, result.frame_poses, intr_config, config)
    result.rejected = rejected
    return result
