"""The head pose as each crop sees it, and back: per-view codes, and their fusion over the views.

A view's pose code is the head's rotation in the crop camera (head-to-crop, 6D), and the place of a point
fixed in the head (the *reference*, the neutral landmarks' centre) in the crop: ``u, v`` its offset from
the crop's centre as a fraction of the crop's width, and ``depth = log(z S / (f s))`` with ``z`` its depth,
``f`` the crop's focal length, ``S`` its width and ``s`` the head's size. The crop's focal length carries
the box's size, so the code does not depend on the camera's distance or lens. Each view's code goes to
the world through its crop camera's pose; the views are fused by the chordal mean of their rotations and
the point nearest to their rays through the reference (depth weighs little: the rays' directions are
sharp, a crop's depth is not).
"""

import torch

from facecap.learn.crops import CropCameras

__all__ = ["encode_pose", "decode_views", "fuse_views", "DEPTH_WEIGHT"]

DEPTH_WEIGHT = 0.05   # weight of a view's depth against its ray's lateral offsets (1) when the views are fused


def encode_pose(crops: CropCameras, R: torch.Tensor, t: torch.Tensor, reference: torch.Tensor,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes of a head pose in N crop cameras.

    Args:
        crops: N crop cameras (world units as ``t``). R: [N, 3, 3], t: [N, 3] head-to-world pose.
        reference: [3] head-frame point. scale: the head's size, world units.
    Returns:
        ([N, 3, 3] head-to-crop rotations, [N, 3] (u, v, depth) codes), in the crops' dtype.
    """
    R, t, reference = (x.to(crops.R.dtype) for x in (R, t, reference))
    point = (crops.R @ (R @ reference + t - crops.centre)[..., None])[..., 0]
    z = point[:, 2]
    f_over_s = crops.focal / crops.size
    code = torch.stack([point[:, 0] / z * f_over_s, point[:, 1] / z * f_over_s, torch.log(z / (f_over_s * scale))], -1)
    return crops.R @ R, code


def decode_views(crops: CropCameras, rotation: torch.Tensor, code: torch.Tensor, scale: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each view's head pose in the world from its codes.

    Args:
        crops: N crop cameras. rotation: [N, 3, 3] head-to-crop rotations. code: [N, 3] (u, v, depth).
        scale: the head's size the codes were made with.
    Returns:
        ([N, 3, 3] head-to-world rotations, [N, 3] reference points, [N, 3] unit rays from the camera
        centres through them), world units.
    """
    rotation, code = rotation.to(crops.R.dtype), code.to(crops.R.dtype)
    s_over_f = crops.size / crops.focal
    direction = torch.stack([code[:, 0] * s_over_f, code[:, 1] * s_over_f, torch.ones_like(s_over_f)], -1)
    z = torch.exp(code[:, 2]) * scale / s_over_f
    to_world = crops.R.transpose(1, 2)
    point = crops.centre + (to_world @ (direction * z[:, None])[..., None])[..., 0]
    ray = torch.nn.functional.normalize((to_world @ direction[..., None])[..., 0], dim=-1)
    return to_world @ rotation, point, ray


def fuse_views(R: torch.Tensor, point: torch.Tensor, ray: torch.Tensor, centre: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One head pose per frame from its views'.

    Args:
        R: [T, V, 3, 3] head-to-world rotations. point: [T, V, 3] reference points; ray: [T, V, 3] unit rays
        through them from the camera centres ``centre`` [T, V, 3]. mask: [T, V] bool, views present
        (every frame needs one).
    Returns:
        ([T, 3, 3] rotations: the chordal mean, [T, 3] reference points: least squares over the rays, their
        depths weighted by DEPTH_WEIGHT).
    """
    m = mask.to(R.dtype)[..., None, None]
    U, _, Vh = torch.linalg.svd((R * m).sum(1))
    d = torch.sign(torch.linalg.det(U @ Vh))
    fused_R = U @ torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1)) @ Vh
    along = ray[..., :, None] * ray[..., None, :]                               # [T, V, 3, 3]
    across = torch.eye(3, dtype=R.dtype, device=R.device) - along
    A = ((across + DEPTH_WEIGHT * along) * m).sum(1)
    b = ((across @ centre[..., None] + DEPTH_WEIGHT * along @ point[..., None]) * m).sum(1)
    return fused_R, torch.linalg.solve(A, b)[..., 0]
