"""Rasterised surface samples against analytic visibility (a plane behind an occluder) and ray casting (the demo
head), on the torch backend."""

import numpy as np
import pytest
import torch

from facecap.camera.torch_camera import CameraTensors, project_points, project_scattered_with_jacobian
from facecap.fit.surface_samples import at_samples, position_jacobian, rasterise_samples, sample_normals
from facecap.render import make_context, vertex_normals
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.synth.cameras import make_camera_ring

LENS = (-0.08, 0.03, 0.001, -0.002, 0.0)
SIZE = (160, 120)
PLANE_HALF, OCCLUDER_HALF, OCCLUDER_Z = 60.0, 15.0, 150.0   # mm; the camera is 600 mm away on +z


def _grid(half: float, z: float, n: int, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A square of side 2 ``half`` at height z, n x n quads, facing +z (or -z when ``flip``)."""
    s = torch.linspace(-half, half, n + 1, dtype=torch.float64)
    y, x = torch.meshgrid(s, s, indexing="ij")
    verts = torch.stack([x, y, torch.full_like(x, z)], -1).reshape(-1, 3)
    i = torch.arange(n)
    a = (i[:, None] * (n + 1) + i[None, :]).reshape(-1)
    quads = torch.stack([a, a + 1, a + n + 2, a + n + 1], -1)
    faces = torch.cat([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return verts, faces[:, [0, 2, 1]] if flip else faces


def _plane_scene(flip: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, CameraTensors]:
    """Verts [1, V, 3], faces, the plane's rows and the occluder's rows, one distorted camera on +z."""
    plane, plane_faces = _grid(PLANE_HALF, 0.0, 12, flip)
    occluder, occluder_faces = _grid(OCCLUDER_HALF, OCCLUDER_Z, 2)
    verts = torch.cat([plane, occluder])[None]
    faces = torch.cat([plane_faces, occluder_faces + len(plane)])
    calib = make_camera_ring(1, SIZE, distance=600.0, arc_deg=0.0, elevation_deg=0.0, dist=LENS, fov_deg=20.0)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    rows = torch.arange(len(faces))
    return verts, faces, rows[:len(plane_faces)], rows[len(plane_faces):], cams


def _rays(cams: CameraTensors, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World origin [3] and directions [n, 3] of camera 0's pinhole rays through [n, 2] pixels."""
    K, R, t = cams.K[0], cams.R[0], cams.t[0]
    xy = (pixels - K[:2, 2]) / torch.stack([K[0, 0], K[1, 1]])
    direction = torch.cat([xy, torch.ones_like(xy[:, :1])], -1) @ R                 # R^T d, as rows
    return -R.T @ t, direction


def _plane_hits(cams: CameraTensors, pixels: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Which pixels' rays surely see the plane (more than ``margin`` mm inside every edge that decides), and
    which surely do not (more than ``margin`` outside)."""
    origin, d = _rays(cams, pixels)
    at_plane = origin + d * (-origin[2] / d[:, 2])[:, None]
    at_occluder = origin + d * ((OCCLUDER_Z - origin[2]) / d[:, 2])[:, None]
    inside_plane = PLANE_HALF - at_plane[:, :2].abs().amax(1)                        # > 0 inside
    outside_occluder = at_occluder[:, :2].abs().amax(1) - OCCLUDER_HALF            # > 0 outside
    sees = torch.minimum(inside_plane, outside_occluder)
    return sees > margin, sees < -margin


@pytest.mark.parametrize("scale, stride", [(1.0, 1), (0.5, 2)])
def test_plane_behind_an_occluder(scale, stride):
    verts, faces, plane, occluder, cams = _plane_scene()
    samples = rasterise_samples(make_context("torch"), verts, faces, plane, occluder, cams, scale, stride)
    assert len(samples) > 3000 / (stride / scale) ** 2 and torch.isin(samples.triangle, plane).all()
    torch.testing.assert_close(samples.barycentrics.sum(1), torch.ones(len(samples), dtype=torch.float64))
    assert (samples.barycentrics > -1e-9).all()
    points = at_samples(verts, samples, faces)
    assert points[:, 2].abs().max() < 1e-9                                         # on the plane
    # The point is where its pinhole pixel's ray meets the surface...
    torch.testing.assert_close(project_points(points, cams, distort=False)[0], samples.pixel, atol=1e-6, rtol=0)
    # ...and the residual reads the frame at its distorted projection, inside the image.
    distorted, _ = project_scattered_with_jacobian(points, samples.camera, cams)
    torch.testing.assert_close(distorted, project_points(points, cams)[0], atol=1e-9, rtol=0)
    assert ((distorted >= 2) & (distorted <= torch.tensor(SIZE, dtype=distorted.dtype) - 3)).all()
    # One sample per stride x stride block of the level's image: a grid of pitch stride / scale.
    pitch = stride / scale
    offset = (samples.pixel + 0.5) / pitch - 0.5
    torch.testing.assert_close(offset, offset.round(), atol=1e-6, rtol=0)
    # Visibility against the analytic scene: every pixel that surely sees the plane is a sample, none that
    # surely does not (the occluder's shadow, the plane's outside); a pixel's ray moves 600 / f mm per pixel.
    span = torch.arange(-40, 200, dtype=torch.float64) * pitch + (pitch - 1) / 2
    grid = torch.stack(torch.meshgrid(span, span, indexing="xy"), -1).reshape(-1, 2)
    inside = ((grid >= 0) & (grid <= torch.tensor(SIZE) - 1)).all(1)
    distorted_grid = project_points(_rays(cams, grid)[0] + 600 * _rays(cams, grid)[1], cams)[0]
    framed = ((distorted_grid >= 3) & (distorted_grid <= torch.tensor(SIZE, dtype=torch.float64) - 4)).all(1)
    sure, never = _plane_hits(cams, grid, margin=2 * 600 / float(cams.K[0, 0, 0]) * pitch)
    key = lambda px: set(map(tuple, px.round().long().tolist()))                  # noqa: E731
    sampled = key(samples.pixel)
    assert key(grid[sure & inside & framed]) <= sampled
    assert not key(grid[never]) & sampled


def test_a_plane_facing_away_gives_no_samples():
    verts, faces, plane, occluder, cams = _plane_scene(flip=True)
    assert len(rasterise_samples(make_context("torch"), verts, faces, plane, occluder, cams)) == 0


def _first_hits(origin: torch.Tensor, direction: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """[n] distance along each ray (origin [3], directions [n, 3], unit) to its nearest triangle of [F, 3, 3]
    (Möller and Trumbore 1997), inf where it hits none."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    p = torch.linalg.cross(direction[:, None], e2[None], dim=-1)
    det = (e1[None] * p).sum(-1)
    s = origin - corners[:, 0]
    u = (s[None] * p).sum(-1) / det
    q = torch.linalg.cross(s, e1, dim=-1)
    v = (direction[:, None] * q[None]).sum(-1) / det
    t = (e2 * q).sum(-1)[None] / det
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return torch.where(hit, t, torch.inf).amin(1)


def test_demo_head_samples_are_the_first_surface_on_their_rays():
    rig = build_demo_head(DemoHeadConfig(resolution=0.5, texture_size=16)).in_units("mm")
    weights = np.zeros(rig.num_shapes)
    weights[rig.shape_index("jawOpen")] = 0.6                                       # the mouth's inside shows
    verts = torch.as_tensor(rig.neutral + np.tensordot(weights, rig.shape_deltas, 1))[None]
    faces = torch.as_tensor(rig.faces).long()
    skin = torch.as_tensor(np.flatnonzero(rig.face_material == rig.material_names.index("skin")))
    mouth = torch.as_tensor(np.flatnonzero(rig.face_material == rig.material_names.index("mouth_interior")))
    calib = make_camera_ring(3, (200, 150), distance=700.0, dist=LENS, fov_deg=30.0)
    cams = CameraTensors.from_calibration(calib, dtype=torch.float64)
    samples = rasterise_samples(make_context("torch"), verts, faces, skin, mouth, cams, scale=1.0, stride=2)
    assert torch.isin(samples.triangle, skin).all() and set(samples.camera.tolist()) == {0, 1, 2}
    points = at_samples(verts, samples, faces)
    pick = torch.randperm(len(samples), generator=torch.Generator().manual_seed(0))[:400]
    all_corners = verts[0][faces]
    for c in range(len(cams)):
        mine = pick[samples.camera[pick] == c]
        origin = -cams.R[c].T @ cams.t[c]
        offset = points[mine] - origin
        distance = offset.norm(dim=-1)
        first = _first_hits(origin, offset / distance[:, None], all_corners)
        torch.testing.assert_close(first, distance, atol=1e-6 * float(distance.max()), rtol=0)
    # Normals face the camera they were seen from; the position Jacobian is the barycentric combination.
    normals = sample_normals(vertex_normals(verts, faces), samples, faces)
    centres = -(cams.R.transpose(1, 2) @ cams.t[..., None])[..., 0]
    assert ((normals * (centres[samples.camera] - points)).sum(-1) > 0).float().mean() > 0.99
    corners, weights_k = position_jacobian(samples, faces)
    torch.testing.assert_close((weights_k[..., None] * verts[0][corners]).sum(1), points)
    torch.testing.assert_close(at_samples(verts[0], samples, faces, shared=True), points)
    # The head is closed: drawing each view's front faces only changes no sample.
    culled = rasterise_samples(make_context("torch"), verts, faces, skin, mouth, cams, scale=1.0, stride=2,
                               one_sided=torch.ones(len(faces), dtype=torch.bool))
    assert len(culled) == len(samples)
    for a, b in ((culled.triangle, samples.triangle), (culled.pixel, samples.pixel), (culled.camera, samples.camera)):
        assert torch.equal(a, b)
    torch.testing.assert_close(culled.barycentrics, samples.barycentrics)
