"""Rotation parameterisations shared by fitting, calibration and export.

Conventions: matrices act on column vectors (``x' = R @ x``). Euler "XYZ" follows FBX's
eEulerXYZ, ``R = Rz @ Ry @ Rx`` (angles about x first). The 6D representation is the first two
columns of R (Zhou et al., "On the Continuity of Rotation Representations", CVPR 2019).
"""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

__all__ = ["rotation_6d_to_matrix", "matrix_to_rotation_6d", "euler_xyz_from_matrix", "matrix_from_euler_xyz",
           "axis_angle_to_matrix", "matrix_to_axis_angle", "skew_matrix", "rigid_procrustes"]


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """[..., 6] (two stacked column vectors) to [..., 3, 3] rotations by Gram-Schmidt; differentiable."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] rotations to their [..., 6] representation (first two columns)."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def euler_xyz_from_matrix(R: np.ndarray) -> np.ndarray:
    """[..., 3, 3] to [..., 3] angles (rx, ry, rz) in radians with ``R = Rz @ Ry @ Rx``."""
    R = np.asarray(R, dtype=np.float64)
    # scipy's extrinsic "xyz" applies x, then y, then z about fixed axes: exactly Rz @ Ry @ Rx.
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("xyz").reshape(*R.shape[:-2], 3)


def matrix_from_euler_xyz(angles: np.ndarray) -> np.ndarray:
    """[..., 3] angles (rx, ry, rz) in radians to [..., 3, 3] with ``R = Rz @ Ry @ Rx``."""
    angles = np.asarray(angles, dtype=np.float64)
    return Rotation.from_euler("xyz", angles.reshape(-1, 3)).as_matrix().reshape(*angles.shape[:-1], 3, 3)


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """[..., 3] rotation vectors to [..., 3, 3] by Rodrigues' formula; differentiable, safe at 0."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]
    theta = theta2.clamp_min(1e-24).sqrt()
    small = theta2 < 1e-8
    # Taylor series near zero keep the gradient finite: sin(x)/x ~ 1 - x²/6, (1-cos x)/x² ~ 1/2 - x²/24.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    skew = skew_matrix(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + a * skew + b * (skew @ skew)


def skew_matrix(v: torch.Tensor) -> torch.Tensor:
    """[..., 3] vectors to [..., 3, 3] cross-product matrices: ``skew_matrix(a) @ b == cross(a, b)``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] rotations to [..., 3] rotation vectors (angle below pi), via the unit quaternion.

    The quaternion route (2 atan2(|v|, w)) stays accurate near 0, where acos of the trace does not.
    """
    trace = R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2]
    w = 0.5 * (1 + trace).clamp_min(0).sqrt()
    v = 0.5 * torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    # v = sin(angle) axis = 2 w sin(angle/2) axis, with w = cos(angle/2) > 0 below pi.
    sin_half_axis = v / (2 * w[..., None]).clamp_min(1e-12)
    sin_half = sin_half_axis.norm(dim=-1, keepdim=True)
    half = torch.atan2(sin_half, w[..., None])
    scale = torch.where(sin_half > 1e-12, 2 * half / sin_half.clamp_min(1e-12), torch.full_like(sin_half, 2.0))
    return sin_half_axis * scale


def rigid_procrustes(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
                     with_scale: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares (R, t, s) with ``dst ≈ s R src + t`` (Umeyama 1991), optionally weighted.

    Args:
        src, dst: [N, 3] corresponding points; weights: [N] non-negative, or None.
    Returns:
        R [3, 3] (a proper rotation), t [3], s (1.0 unless ``with_scale``).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0 or (w > 0).sum() < 3:
        raise ValueError("rigid_procrustes needs at least 3 points with positive weight")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    cov = (xd * w[:, None]).T @ xs
    U, S, Vt = np.linalg.svd(cov)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = float((S * np.diag(D)).sum() / (w @ (xs * xs).sum(1))) if with_scale else 1.0
    return R, mu_d - s * R @ mu_s, s
