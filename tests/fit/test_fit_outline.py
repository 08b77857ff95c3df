"""The mesh outline of the fit's silhouette term, against the analytic outline of spheres."""

import numpy as np
import torch

from facecap.camera.model import Calibration, Camera
from facecap.camera.torch_camera import CameraTensors, project_points, world_to_camera
from facecap.fit.appearance import PointZBuffer
from facecap.fit.outline import mesh_edges, outline
from facecap.render.shading import vertex_normals

F64 = torch.float64
FOCAL, WIDTH, HEIGHT = 800.0, 640, 480


def _uv_sphere(centre: np.ndarray, radius: float, rings: int = 90,
               segments: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] and outward-wound triangles [F, 3] of a latitude-longitude sphere."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    T, P = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(T) * np.cos(P), np.cos(T), np.sin(T) * np.sin(P)], -1).reshape(-1, 3)
    verts = np.concatenate([ring, [[0, 1, 0], [0, -1, 0]]]) * radius + centre
    n = rings - 1
    top, bottom = n * segments, n * segments + 1
    faces = []
    for i in range(n - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            c, d = a + segments, b + segments
            faces += [[a, b, c], [b, d, c]]
    for j in range(segments):
        faces += [[top, (j + 1) % segments, j],
                  [bottom, (n - 1) * segments + j, (n - 1) * segments + (j + 1) % segments]]
    return verts, np.array(faces)


def _camera() -> CameraTensors:
    K = np.array([[FOCAL, 0, WIDTH / 2 - 0.5], [0, FOCAL, HEIGHT / 2 - 0.5], [0, 0, 1]])
    camera = Camera(name="cam", image_size=(WIDTH, HEIGHT), K=K, dist=np.zeros(5), R=np.eye(3), t=np.zeros(3))
    return CameraTensors.from_calibration(Calibration(units="mm", cameras=(camera,)), dtype=F64)


def _outline_of(verts: np.ndarray, faces: np.ndarray):
    V, Fc = torch.as_tensor(verts[None]), torch.as_tensor(faces).long()
    normals = vertex_normals(V, Fc)
    edges = torch.as_tensor(mesh_edges(faces, np.arange(len(verts)))).long()
    cams = _camera()
    return outline(project_points(V, cams), world_to_camera(V, cams), normals, edges, cams, PointZBuffer(V, cams))


def test_outline_of_a_sphere_is_its_projected_circle():
    """A sphere of radius r at distance d projects to a circle of radius f r / sqrt(d² - r²)."""
    r, d = 100.0, 1000.0
    verts, faces = _uv_sphere(np.array([0.0, 0.0, d]), r)
    found = _outline_of(verts, faces)
    px = found.pixels.numpy()
    centre = np.array([WIDTH / 2 - 0.5, HEIGHT / 2 - 0.5])
    radius = np.linalg.norm(px - centre, axis=1)
    expected = FOCAL * r / np.sqrt(d * d - r * r)
    angles = np.arctan2(*(px - centre).T[::-1])
    print(f"{len(px)} outline points, radius {radius.mean():.2f} ± {radius.std():.2f} px (analytic {expected:.2f})")
    assert np.abs(radius - expected).max() < 0.3
    assert np.histogram(angles, bins=36, range=(-np.pi, np.pi))[0].min() > 0   # all the way round


def test_inner_contours_are_not_outline():
    """A small sphere in front of a large one: its contour lies inside the large one's silhouette."""
    big, big_faces = _uv_sphere(np.array([0.0, 0.0, 1000.0]), 150.0)
    small, small_faces = _uv_sphere(np.array([20.0, 0.0, 700.0]), 40.0, rings=60, segments=120)
    verts = np.concatenate([big, small])
    faces = np.concatenate([big_faces, small_faces + len(big)])
    found = _outline_of(verts, faces)
    edges = mesh_edges(faces, np.arange(len(verts)))
    on_small = edges[found.edge.numpy()].min(axis=1) >= len(big)
    assert len(found) > 100
    assert not on_small.any()
