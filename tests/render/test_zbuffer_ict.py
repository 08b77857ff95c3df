"""The torch rasteriser on the ICT full rig against an independent per-triangle numpy z-buffer."""

import math

import numpy as np
import pytest
import torch

from facecap.render import make_context, rasterize
from tests.conftest import shared_path

HEIGHT, WIDTH = 120, 160
CAMERA_DISTANCE_CM = 70.0
FOCAL_NDC = 3.0  # half-height of the image spans ~23 cm at the head: the face fills most of the frame


def _clip(verts: np.ndarray, yaw: float) -> np.ndarray:
    """Head-space cm -> clip space of a pinhole looking at the head from +z, row 0 at the chin side."""
    c, s = math.cos(yaw), math.sin(yaw)
    x = verts @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    depth = CAMERA_DISTANCE_CM - x[:, 2]
    near, far = 10.0, 200.0
    z = (far + near) / (far - near) * depth - 2 * far * near / (far - near)  # OpenGL depth: z/w in [-1, 1]
    return np.stack([x[:, 0] * FOCAL_NDC * HEIGHT / WIDTH, -x[:, 1] * FOCAL_NDC, z, depth], -1)


def _reference_zbuffer(clip: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle loop in float64: barycentric inside test at pixel centres, keep the smallest z/w."""
    ndc = clip[:, :3] / clip[:, 3:]
    sx = (ndc[:, 0] + 1) * WIDTH / 2
    sy = (ndc[:, 1] + 1) * HEIGHT / 2
    depth = np.full((HEIGHT, WIDTH), np.inf)
    ids = np.full((HEIGHT, WIDTH), -1)
    tx, ty = sx[faces], sy[faces]
    lo_x = np.ceil(tx.min(1) - 0.5).astype(int).clip(0, WIDTH)
    hi_x = np.floor(tx.max(1) - 0.5).astype(int).clip(-1, WIDTH - 1)
    lo_y = np.ceil(ty.min(1) - 0.5).astype(int).clip(0, HEIGHT)
    hi_y = np.floor(ty.max(1) - 0.5).astype(int).clip(-1, HEIGHT - 1)
    for f in np.flatnonzero((hi_x >= lo_x) & (hi_y >= lo_y)):
        ys, xs = np.mgrid[lo_y[f]:hi_y[f] + 1, lo_x[f]:hi_x[f] + 1]
        (x0, x1, x2), (y0, y1, y2) = tx[f], ty[f]
        den = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if den == 0:
            continue
        px, py = xs + 0.5, ys + 0.5
        b1 = ((px - x0) * (y2 - y0) - (x2 - x0) * (py - y0)) / den
        b2 = ((x1 - x0) * (py - y0) - (px - x0) * (y1 - y0)) / den
        b0 = 1 - b1 - b2
        z = b0 * ndc[faces[f, 0], 2] + b1 * ndc[faces[f, 1], 2] + b2 * ndc[faces[f, 2], 2]
        hit = (b0 >= 0) & (b1 >= 0) & (b2 >= 0) & (z < depth[ys, xs])
        depth[ys[hit], xs[hit]] = z[hit]
        ids[ys[hit], xs[hit]] = f
    return ids, depth


@pytest.mark.parametrize("yaw", [0.0, 0.7])
def test_torch_zbuffer_matches_reference_on_ict(yaw):
    from facecap.rig import load_rig

    rig = load_rig(shared_path("data", "rigs", "ict_full.npz"))
    faces = rig.faces[rig.opaque_faces()]
    clip = _clip(rig.neutral, yaw)
    ref_ids, ref_depth = _reference_zbuffer(clip, faces)
    pos = torch.tensor(clip, dtype=torch.float32)[None]
    rast, _ = rasterize(make_context("torch"), pos, torch.tensor(faces, dtype=torch.int32), (HEIGHT, WIDTH))
    ids = rast[0, ..., 3].numpy().astype(int) - 1
    mask, ref_mask = ids >= 0, ref_ids >= 0
    iou = (mask & ref_mask).sum() / (mask | ref_mask).sum()
    assert ref_mask.mean() > 0.15
    assert iou > 0.995
    both = mask & ref_mask
    assert (ids[both] == ref_ids[both]).mean() > 0.99
    depth_err = np.abs(rast[0, ..., 2].numpy()[both] - ref_depth[both])
    assert np.quantile(depth_err, 0.999) < 1e-4
