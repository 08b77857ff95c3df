"""The raster sampler: surface points that move with the mesh, their Jacobians against autograd through the rig,
and their visibility against an analytic scene (a plane behind an occluder) and ray casting (the demo head)."""

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors, project_points, world_to_camera
from facecap.fit.appearance import MIN_FACING_COSINE, facing_cosine, inside_image, photometric_samples
from facecap.fit.linearise import corrective_slopes, point_jacobian_columns
from facecap.fit.problem import FitModel, FrameParams
from facecap.fit.raster_sampler import raster_model
from facecap.geometry.rotations import axis_angle_to_matrix
from facecap.render import make_context
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.rig.evaluate import TorchRig
from facecap.rig.model import Rig
from facecap.synth.cameras import make_camera_ring
from tests.fit.conftest import first_hits

PLANE_HALF, OCCLUDER_HALF, OCCLUDER_Z, SLIDE = 60.0, 15.0, 150.0, 35.0   # mm; the camera is 600 mm away on +z


def _demo_points(spacing_mm: float, raster_scale: float = 0.5, views: int = 3):
    """The demo head (mm) seen by ``views`` cameras, its skin read at surface points ``spacing_mm`` apart, the
    mouth's inside drawn but not read: (rig, raster model)."""
    rig = build_demo_head(DemoHeadConfig(resolution=0.5, texture_size=16)).in_units("mm")
    cams = CameraTensors.from_calibration(make_camera_ring(views, (200, 150), distance=700.0, fov_deg=30.0))
    samples = photometric_samples(rig, ["mouth_interior"])
    model = FitModel.build(rig, cams, samples, "cpu")
    return rig, raster_model(model, rig, ["mouth_interior"], spacing_mm, raster_scale, make_context("torch"))


def test_surface_points_move_with_the_mesh_and_their_jacobians_are_the_rigs():
    """At random weights, pose and identity each point is its triangle's barycentric combination of the posed
    vertices, and its Jacobian columns (weights with correctives, rotation, translation, identity) are autograd's
    through the rig of that combination."""
    rig, model = _demo_points(2.0)
    N, V = len(model.samples), model.num_vertices
    assert N > 2 * len(photometric_samples(rig, ["mouth_interior"]))            # points between the vertices
    gen = torch.Generator().manual_seed(0)
    p = FrameParams(torch.rand(1, rig.num_shapes, generator=gen) * 0.5,
                    axis_angle_to_matrix(0.3 * torch.randn(1, 3, generator=gen)), torch.randn(1, 3, generator=gen),
                    torch.randn(rig.num_identities, generator=gen))
    pick = torch.randperm(N, generator=gen)[:300]
    used, local = torch.unique(model.point_corners[pick], return_inverse=True)            # [U], [300, 3]
    exact = TorchRig.from_rig(rig, dtype=torch.float64, vertices=used.numpy())
    p64 = FrameParams(*(x.double() for x in (p.weights, p.R, p.t, p.identity)))
    weights = model.point_weights[pick].double()

    def points(w, rotation, t, identity):
        R = axis_angle_to_matrix(rotation) @ p64.R[0]
        verts = exact.evaluate(w[None], R[None], t[None], identity=identity)[0]
        return (verts[local] * weights[..., None]).sum(1)

    args = (p64.weights[0], torch.zeros(3, dtype=torch.float64), p64.t[0], p64.identity)
    posed = model.rig.evaluate(p.weights, p.R, p.t, identity=p.identity)
    assert posed.shape[1] > V
    torch.testing.assert_close(posed[0, model.samples[pick]].double(), points(*args), atol=1e-3, rtol=0)
    A = point_jacobian_columns(model.rows, pick, corrective_slopes(model.rows, p.weights), p,
                               posed[:, model.samples[pick]])
    expected = torch.cat(torch.autograd.functional.jacobian(points, args, vectorize=True), -1)
    torch.testing.assert_close(A[0].double(), expected, atol=1e-3, rtol=1e-4)


def _grid(half: float, z: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A square of side 2 ``half`` at height z, n x n quads, facing +z: vertices [V, 3], triangles [F, 3]."""
    s = np.linspace(-half, half, n + 1)
    y, x = np.meshgrid(s, s, indexing="ij")
    verts = np.stack([x, y, np.full_like(x, z)], -1).reshape(-1, 3)
    a = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).reshape(-1)
    quads = np.stack([a, a + 1, a + n + 2, a + n + 1], -1)
    return verts, np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def _plane_and_occluder() -> Rig:
    """A skin plane at z = 0 and an occluder square in front of it, whose one shape slides it along x."""
    plane, plane_faces = _grid(PLANE_HALF, 0.0, 12)
    occluder, occluder_faces = _grid(OCCLUDER_HALF, OCCLUDER_Z, 2)
    V = len(plane) + len(occluder)
    slide = np.zeros((1, V, 3))
    slide[0, len(plane):, 0] = SLIDE
    return Rig(units="mm", neutral=np.concatenate([plane, occluder]),
               faces=np.concatenate([plane_faces, occluder_faces + len(plane)]).astype(np.int32),
               shape_names=("slide",), shape_deltas=slide, corrective_keys=np.zeros((0, 4), np.int32),
               corrective_deltas=np.zeros((0, V, 3)), identity_deltas=np.zeros((0, V, 3)),
               face_material=np.repeat(np.array([0, 1], np.int32), [len(plane_faces), len(occluder_faces)]),
               material_names=("skin", "occluder"), material_opaque=np.array([True, True]),
               landmark_vertices=np.array([0], np.int32))


def test_a_point_behind_an_occluder_is_hidden_and_shows_when_it_moves():
    """Which plane points the camera sees, against the analytic scene: a point is hidden exactly when its ray
    to the camera crosses the occluder (away from the shadow's edge by a raster pixel's worth), and the
    shadow follows the occluder when its shape moves it."""
    rig = _plane_and_occluder()
    calib = make_camera_ring(1, (160, 120), distance=600.0, arc_deg=0.0, elevation_deg=0.0, fov_deg=20.0)
    cams = CameraTensors.from_calibration(calib)
    samples = photometric_samples(rig, ["occluder"])
    model = raster_model(FitModel.build(rig, cams, samples, "cpu"), rig, ["occluder"], 2.0, 0.5,
                         make_context("torch"))
    origin = -(cams.R[0].T @ cams.t[0])
    margin = 2 * 600 / float(cams.K[0, 0, 0]) / 0.5 * OCCLUDER_Z / 600    # two raster pixels at the occluder
    for slide in (0.0, 1.0):
        weights = torch.tensor([[slide]])
        verts = model.rig.evaluate(weights, torch.eye(3)[None], torch.zeros(1, 3))
        X = verts[0, model.samples]
        at_occluder = origin + (X - origin) * ((OCCLUDER_Z - origin[2]) / (X[:, 2] - origin[2]))[:, None]
        inside = torch.maximum((at_occluder[:, 0] - SLIDE * slide).abs(), at_occluder[:, 1].abs()) - OCCLUDER_HALF
        framed = inside_image(project_points(X[None], cams), cams)[0, 0]
        visible = model.visible_samples(verts)[0, 0]
        hidden, shown = inside < -margin, (inside > margin) & framed
        assert hidden.sum() > 100 and shown.sum() > 1000
        assert not visible[hidden].any() and visible[shown].all()
    assert X[:, 2].abs().max() < 1e-4                                           # the points lie on the plane


def test_raster_visibility_agrees_with_ray_casting_on_the_demo_head():
    """With the jaw open, three cameras around the demo head: a point is seen when the first surface on its
    ray is the point itself, it faces the camera and it projects inside the frame. The raster at half the
    images' scale misses few of those and adds fewer."""
    rig, model = _demo_points(2.0)
    weights = torch.zeros(1, rig.num_shapes)
    weights[0, rig.shape_index("jawOpen")] = 0.6
    verts = model.rig.evaluate(weights, torch.eye(3)[None], torch.zeros(1, 3))
    pick = torch.randperm(len(model.samples), generator=torch.Generator().manual_seed(0))[:1500]
    X = verts[:, model.samples[pick]]
    corners = verts[0, :model.num_vertices].double()[model.faces[model.drawn]]
    first_surface = []
    for c in range(len(model.cams)):
        origin = -model.cams.R[c].T.double() @ model.cams.t[c].double()
        offset = X[0].double() - origin
        distance = offset.norm(dim=-1)
        first_surface.append(first_hits(origin, offset / distance[:, None], corners) > distance - 0.05)
    facing = facing_cosine(world_to_camera(X, model.cams), model.sample_normals(verts)[:, pick], model.cams)
    truth = torch.stack(first_surface) & (facing[0] > MIN_FACING_COSINE) & \
        inside_image(project_points(X, model.cams), model.cams)[0]
    visible = model.visible_samples(verts)[0, :, pick]
    seen = int(truth.sum())
    assert seen > 1000 and (~truth).sum() > 500
    assert (truth & ~visible).sum() < 0.04 * seen and (visible & ~truth).sum() < 0.01 * seen
