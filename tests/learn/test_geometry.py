"""Pose codes per crop and their fusion over views, against known poses."""

import numpy as np
import torch

from facecap.geometry.rotations import axis_angle_to_matrix
from facecap.learn.crops import CropCameras
from facecap.learn.geometry import decode_views, encode_pose, fuse_views
from facecap.synth.cameras import look_at

REFERENCE = torch.tensor([1.0, 20.0, 80.0], dtype=torch.float64)
SCALE = 150.0


def _scene(rng, views=4):
    """A head pose and ``views`` crop cameras looking at it: (cameras, R [3, 3], t [3])."""
    R = axis_angle_to_matrix(torch.as_tensor(rng.normal(0, 0.4, size=3)))
    t = torch.as_tensor(rng.normal(0, 100.0, size=3))
    head = (R @ REFERENCE + t).numpy()
    Rs, centres = [], []
    for yaw in np.linspace(-0.8, 0.8, views):
        centre = head + 900 * np.array([np.sin(yaw), 0.1, np.cos(yaw)]) + rng.normal(0, 20.0, size=3)
        Rc, _ = look_at(centre, head + rng.normal(0, 10.0, size=3))
        Rs.append(Rc)
        centres.append(centre)
    cams = CropCameras(R=torch.as_tensor(np.stack(Rs)), centre=torch.as_tensor(np.stack(centres)),
                       focal=torch.as_tensor(rng.uniform(250, 400, size=views)), size=64)
    return cams, R, t


def test_codes_decode_to_the_pose_they_encode(rng):
    cams, R, t = _scene(rng)
    V = len(cams)
    rotation, code = encode_pose(cams, R.expand(V, 3, 3), t.expand(V, 3), REFERENCE, SCALE)
    assert code[:, :2].abs().max() < 0.2                     # the head is near the crops' centres
    R_views, point, ray = decode_views(cams, rotation, code, SCALE)
    torch.testing.assert_close(R_views, R.expand(V, 3, 3))
    torch.testing.assert_close(point, (R @ REFERENCE + t).expand(V, 3))
    torch.testing.assert_close(ray, torch.nn.functional.normalize(point - cams.centre, dim=-1))


def test_fusion_keeps_the_rays_and_discounts_wrong_depths(rng):
    """Views agreeing on direction but not on depth (a crop's depth is its weakest output) fuse to the point
    the rays meet, within a small fraction of the depth errors; rotations fuse to their chordal mean."""
    cams, R, t = _scene(rng)
    V = len(cams)
    rotation, code = encode_pose(cams, R.expand(V, 3, 3), t.expand(V, 3), REFERENCE, SCALE)
    code[:, 2] += torch.as_tensor(rng.normal(0, 0.1, size=V))          # ~10 % depth errors, ~90 mm
    wobble = axis_angle_to_matrix(torch.as_tensor(rng.normal(0, 0.02, size=(V, 3))))
    R_views, point, ray = decode_views(cams, wobble @ rotation, code, SCALE)
    mask = torch.ones(1, V, dtype=torch.bool)
    fused_R, fused_X = fuse_views(R_views[None], point[None], ray[None], cams.centre[None], mask)
    truth = R @ REFERENCE + t
    assert (point - truth).norm(dim=-1).max() > 30.0
    assert (fused_X[0] - truth).norm() < 5.0
    def angle(A: torch.Tensor) -> torch.Tensor:
        return torch.rad2deg(torch.arccos((((A * R).sum((-1, -2)) - 1) / 2).clamp(-1, 1)))
    assert angle(fused_R[0]) < 0.7 * angle(R_views).mean()                # averaging the views' errors
    torch.testing.assert_close(fused_R[0] @ fused_R[0].T, torch.eye(3, dtype=torch.float64))


def test_fusion_ignores_masked_views_and_a_single_view_is_its_own_answer(rng):
    cams, R, t = _scene(rng, views=3)
    rotation, code = encode_pose(cams, R.expand(3, 3, 3), t.expand(3, 3), REFERENCE, SCALE)
    code[1] += 5.0                                                      # a wild view, masked out
    R_views, point, ray = decode_views(cams, rotation, code, SCALE)
    R_views[1] = torch.eye(3, dtype=torch.float64)
    single = torch.tensor([[True, False, False]])
    fused_R, fused_X = fuse_views(R_views[None], point[None], ray[None], cams.centre[None], single)
    torch.testing.assert_close(fused_X[0], point[0])
    torch.testing.assert_close(fused_R[0], R)
    two = torch.tensor([[True, False, True]])
    _, fused_X = fuse_views(R_views[None], point[None], ray[None], cams.centre[None], two)
    torch.testing.assert_close(fused_X[0], R @ REFERENCE + t)
