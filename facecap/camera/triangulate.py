"""Robust multi-view triangulation of 2D points (landmarks) with calibrated OpenCV cameras.

Method: undistort to normalised coordinates (cv2.undistortPoints, tight criteria), confidence-weighted linear
triangulation (the DLT of Hartley & Zisserman, Multiple View Geometry, 2nd ed., §12.2, solved as the
least-squares inhomogeneous system), a view-pair hypothesise-and-verify step that keeps the largest set of
views agreeing within a pixel threshold (RANSAC with exhaustive pairs, MSAC tie-break: Torr & Zisserman
2000), then Gauss-Newton on the weighted reprojection error (H&Z §4.2, the "gold standard" for a point).
Everything is vectorised over the T·L points, in chunks to bound memory.
"""

import itertools
import logging

import cv2
import numpy as np

from facecap.camera.model import Calibration
from facecap.checks import check_shape
from facecap.errors import ShapeError

__all__ = ["triangulate_points", "DEFAULT_THRESHOLD_PX"]

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD_PX = 8.0       # inlier reprojection error: a few times a face detector's typical error
DEFAULT_REFINE_ITERATIONS = 5    # Gauss-Newton converges in 2-3 steps from the DLT for well-spread cameras
CHUNK_POINTS = 8192              # points per vectorised batch: pairs x chunk x views arrays stay ~10 MB
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)
MIN_DEPTH = 1e-9                 # a point must lie in front of a camera that sees it
IDENTITY = np.eye(3)             # P = I makes cv2.undistortPoints return normalised coordinates


def _undistort(points: np.ndarray, calibration: Calibration) -> np.ndarray:
    """[N, C, 2] px -> [N, C, 2] normalised (x/z, y/z) camera coordinates, per camera's K and dist."""
    out = np.empty_like(points)
    for c, cam in enumerate(calibration.cameras):
        pts = np.ascontiguousarray(points[:, c].reshape(-1, 1, 2))
        out[:, c] = cv2.undistortPoints(pts, cam.K, cam.dist14(), R=IDENTITY, P=IDENTITY,
                                        criteria=UNDISTORT_CRITERIA).reshape(-1, 2)
    return out


def _dlt(x: np.ndarray, w: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation.

    x: [..., C, 2] normalised points; w: [..., C] weights (0 = unused); R [C, 3, 3], t [C, 3] world-to-camera.
    Rows (x r3 - r1)·X + (x t3 - t1) = 0 and the same for y, summed as normal equations. Returns [..., 3];
    entries with fewer than two weighted views are NaN.
    """
    a = x[..., :, :, None] * R[:, 2][:, None, :] - R[:, :2]          # [..., C, 2, 3]
    b = x * t[:, 2][:, None] - t[:, :2]                                # [..., C, 2]
    M = np.einsum("...c,...cki,...ckj->...ij", w, a, a)
    v = np.einsum("...c,...cki,...ck->...i", w, a, b)
    ok = (w > 0).sum(-1) >= 2
    M = np.where(ok[..., None, None], M, np.eye(3))
    X = -np.linalg.solve(M, v[..., None])[..., 0]
    return np.where(ok[..., None], X, np.nan)


def _reprojection(X: np.ndarray, x: np.ndarray, R: np.ndarray, t: np.ndarray,
                  focal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals in undistorted px: X [..., 3], x [..., C, 2] -> (r [..., C, 2], xc [..., C, 3], err [..., C])."""
    xc = np.einsum("cij,...j->...ci", R, X) + t                        # [..., C, 3] camera coordinates
    z = xc[..., 2]
    safe = np.where(z > MIN_DEPTH, z, 1.0)
    r = (xc[..., :2] / safe[..., None] - x) * focal[:, None]
    err = np.where(z > MIN_DEPTH, np.linalg.norm(r, axis=-1), np.inf)
    return r, xc, err


def _refine(X: np.ndarray, x: np.ndarray, w: np.ndarray, R: np.ndarray, t: np.ndarray, focal: np.ndarray,
            iterations: int) -> np.ndarray:
    """Gauss-Newton on sum_c w_c |r_c|^2 (undistorted px), batched. X [N, 3], x [N, C, 2], w [N, C]."""
    for _ in range(iterations):
        r, xc, _ = _reprojection(X, x, R, t, focal)
        z = np.where(xc[..., 2] > MIN_DEPTH, xc[..., 2], 1.0)
        u = xc[..., :2] / z[..., None]
        # d(xc_xy / z)/dX = (1/z) [I2 | -u] R
        D = np.zeros(xc.shape[:-1] + (2, 3))
        D[..., 0, 0] = D[..., 1, 1] = 1.0
        D[..., :, 2] = -u
        J = np.einsum("nckl,clj->nckj", D / z[..., None, None], R) * focal[:, None, None]
        H = np.einsum("nc,ncki,nckj->nij", w, J, J)
        g = np.einsum("nc,ncki,nck->ni", w, J, r)
        finite = np.isfinite(H).all((-1, -2)) & np.isfinite(g).all(-1)
        H = np.where(finite[:, None, None], H, np.eye(3))
        ok = finite & (np.linalg.det(H) > 0)
        g = np.where(ok[:, None], g, 0.0)
        step = np.linalg.solve(np.where(ok[:, None, None], H, np.eye(3)), g[..., None])[..., 0]
        X = X - np.where(ok[:, None], step, 0.0)
    return X


def _consensus(x: np.ndarray, w: np.ndarray, R: np.ndarray, t: np.ndarray, focal: np.ndarray,
               threshold: float) -> np.ndarray:
    """[N, C] bool: the largest set of views consistent with one view pair's point (MSAC score on ties)."""
    C = x.shape[1]
    pairs = np.array(list(itertools.combinations(range(C), 2)))      # [P, 2]
    sel = np.zeros((len(pairs), C))
    sel[np.arange(len(pairs))[:, None], pairs] = 1.0
    Xp = _dlt(x[None], w[None] * sel[:, None, :], R, t)               # [P, N, 3]
    _, _, err = _reprojection(Xp, x[None], R, t, focal)              # [P, N, C]
    seen = w[None] > 0
    inlier = seen & (err < threshold)
    cost = np.where(seen, np.minimum(np.nan_to_num(err, nan=np.inf), threshold) ** 2, 0.0).sum(-1)
    score = inlier.sum(-1) - cost / (threshold ** 2 * (C + 1))        # count first, then MSAC cost in (0, 1)
    score = np.where(np.isfinite(Xp).all(-1), score, -np.inf)
    best = np.argmax(score, axis=0)                                   # [N]
    return np.take_along_axis(inlier, best[None, :, None], axis=0)[0]


def triangulate_points(points: np.ndarray, confidence: np.ndarray, calibration: Calibration,
                       threshold_px: float = DEFAULT_THRESHOLD_PX, min_views: int = 2,
                       refine_iterations: int = DEFAULT_REFINE_ITERATIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate points seen by several calibrated cameras, robust to a missing or a wrong view.

    Args:
        points: [T, C, L, 2] px, distorted image coordinates (docs/formats.md pixel centres), cameras in
            ``calibration.cameras`` order (e.g. ``landmarks.cameras(calibration.names)``).
        confidence: [T, C, L] in [0, 1], weights of the views; 0 = not seen.
        calibration: the C cameras.
        threshold_px: a view is an outlier when its reprojection error exceeds this (undistorted px).
        min_views: fewest agreeing views for a valid point.
        refine_iterations: Gauss-Newton steps after the linear solution (0 = DLT only).
    Returns:
        X: [T, L, 3] float64 world points in calibration units (NaN where not valid);
        valid: [T, L] bool: at least ``min_views`` inlier views, in front of them, RMS residual <= threshold;
        residual_px: [T, L] RMS reprojection error over the inlier views, distorted px (NaN where none).
    """
    dims = check_shape(points, "T C L 2", "points")
    check_shape(confidence, f"{dims['T']} {dims['C']} {dims['L']}", "confidence")
    if dims["C"] != len(calibration.cameras):
        raise ShapeError(f"points have {dims['C']} cameras but the calibration has {len(calibration.cameras)} "
                         f"({', '.join(calibration.names)})")
    if min_views < 2:
        raise ShapeError(f"min_views must be at least 2 to triangulate, got {min_views}")
    T, C, L = dims["T"], dims["C"], dims["L"]
    R = np.stack([c.R for c in calibration.cameras])
    t = np.stack([c.t for c in calibration.cameras])
    focal = np.array([np.sqrt(c.K[0, 0] * c.K[1, 1]) for c in calibration.cameras])
    pts = np.asarray(points, dtype=np.float64).transpose(0, 2, 1, 3).reshape(T * L, C, 2)
    w = np.asarray(confidence, dtype=np.float64).transpose(0, 2, 1).reshape(T * L, C)
    w = np.where(np.isfinite(pts).all(-1) & np.isfinite(w) & (w > 0), w, 0.0)
    pts = np.where(w[..., None] > 0, pts, 0.0)
    X = np.full((T * L, 3), np.nan)
    inliers = np.zeros((T * L, C), dtype=bool)
    for start in range(0, T * L, CHUNK_POINTS):
        sl = slice(start, start + CHUNK_POINTS)
        x, wc = _undistort(pts[sl], calibration), w[sl]
        keep = _consensus(x, wc, R, t, focal, threshold_px) if C > 2 else wc > 0
        wk = np.where(keep, wc, 0.0)
        Xc = _refine(_dlt(x, wk, R, t), x, wk, R, t, focal, refine_iterations)
        X[sl], inliers[sl] = Xc, keep & np.isfinite(Xc).all(-1, keepdims=True)
    residual = np.full((T * L, C), np.nan)
    Xs = np.nan_to_num(X)
    for c, cam in enumerate(calibration.cameras):
        proj, _ = cv2.projectPoints(Xs.reshape(-1, 1, 3), cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist14())
        residual[:, c] = np.linalg.norm(proj.reshape(-1, 2) - pts[:, c], axis=-1)
    depth_ok = (np.einsum("cij,nj->nci", R, Xs) + t)[..., 2] > MIN_DEPTH
    n_in = inliers.sum(-1)
    rms = np.sqrt(np.where(inliers, residual ** 2, 0.0).sum(-1) / np.maximum(n_in, 1))
    rms = np.where(n_in > 0, rms, np.nan)
    valid = (n_in >= min_views) & (depth_ok | ~inliers).all(-1) & (rms <= threshold_px)
    X = np.where(valid[:, None], X, np.nan)
    rejected = int(((w > 0) & ~inliers).sum())
    if rejected:
        log.info("triangulation rejected %d of %d observations as outliers", rejected, int((w > 0).sum()))
    return X.reshape(T, L, 3), valid.reshape(T, L), rms.reshape(T, L)
