"""Multi-view renderer: landmark placement with real lens distortion vs cv2, layout, gradients."""

import cv2
import numpy as np
import pytest
import torch

from facecap.camera.model import Calibration, Camera
from facecap.camera.torch_camera import CameraTensors
from facecap.errors import ShapeError
from facecap.render.ops import make_context
from facecap.render.renderer import RenderResult, render_attribute, render_views
from facecap.render.shading import sh_from_lights

F64 = torch.float64
# Half-width of the pixel window where the landmark's attribute field is fitted by an affine model.
FIT_HALF = 2


def look_at(centre: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera R, t for an OpenCV camera at ``centre`` looking at ``target`` with world ``up``."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ centre


def make_cameras(n: int, size=(160, 120), dist=(-0.25, 0.08, 1e-3, -1e-3, -0.01)) -> Calibration:
    cams = []
    for i, ang in enumerate(np.linspace(-0.5, 0.5, n)):
        R, t = look_at(np.array([np.sin(ang) * 500, 40.0 * i, np.cos(ang) * 500]), np.zeros(3))
        K = np.array([[260.0 + 10 * i, 0, size[0] / 2 - 0.5 + i], [0, 262.0, size[1] / 2 - 0.5 - i], [0, 0, 1]])
        cams.append(Camera(f"cam{i}", size, K, np.asarray(dist, dtype=float), R, t))
    return Calibration("mm", tuple(cams))


def grid_mesh(n: int = 12, half: float = 120.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tilted square plane facing +z (towards the cameras), counter-clockwise seen from +z."""
    s = np.linspace(-half, half, n + 1)
    X, Y = np.meshgrid(s, s)
    verts = np.stack([X, Y, 0.2 * X], -1).reshape(-1, 3)
    uv = np.stack([(X + half) / (2 * half), (Y + half) / (2 * half)], -1).reshape(-1, 2)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return verts, faces, uv


def locate_zero(field: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Sub-pixel (u, v) where a smooth [H, W, A] field vanishes: affine least squares around its minimum."""
    norm = np.where(covered > 0.999, np.linalg.norm(field, axis=-1), np.inf)
    v0, u0 = np.unravel_index(np.argmin(norm), norm.shape)
    vs, us = np.mgrid[v0 - FIT_HALF:v0 + FIT_HALF + 1, u0 - FIT_HALF:u0 + FIT_HALF + 1]
    A = np.stack([np.ones(us.size), (us - u0).ravel(), (vs - v0).ravel()], 1)
    coef = np.linalg.lstsq(A, field[vs, us].reshape(-1, field.shape[-1]), rcond=None)[0]   # [3, A]
    a, J = coef[0], coef[1:].T                                                                # [A], [A, 2]
    d = np.linalg.lstsq(J, -a, rcond=None)[0]
    return np.array([u0, v0]) + d


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_rendered_landmark_lands_on_cv2_projection(scale):
    calib = make_cameras(3)
    cams = CameraTensors.from_calibration(calib, dtype=F64)
    verts, faces, _ = grid_mesh()
    landmark = 5 * 13 + 7                                 # an interior vertex off the optical axes
    X = torch.as_tensor(verts, dtype=F64)[None]
    offset = X[0] - X[0, landmark]                         # zero exactly at the landmark
    values, cover = render_attribute(make_context("torch"), X, torch.as_tensor(faces), offset, cams, scale=scale)
    for c, cam in enumerate(calib.cameras):
        found = locate_zero(values[0, c].numpy(), cover[0, c].numpy())
        expected = cv2.projectPoints(verts[landmark][None], cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)[0][0, 0]
        expected = (expected + 0.5) * scale - 0.5
        assert np.abs(found - expected).max() < 0.25, (cam.name, found, expected)


def scene(n_cams: int = 2, size=(48, 36), dtype=F64):
    calib = make_cameras(n_cams, size=size)
    cams = CameraTensors.from_calibration(calib, dtype=dtype)
    verts, faces, uv = grid_mesh(6, half=30.0)
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(2, 8, 8, 3, dtype=dtype, generator=g)
    uv_t = torch.as_tensor(uv, dtype=dtype) * torch.tensor([2.0, 1.0], dtype=dtype)   # spans two UDIM tiles
    sh = sh_from_lights(torch.full((3,), 0.4, dtype=dtype), torch.tensor([[0.3, -0.4, 1.0]], dtype=dtype),
                        torch.full((1, 3), 0.6, dtype=dtype))[None]
    return cams, torch.as_tensor(verts, dtype=dtype)[None], torch.as_tensor(faces), uv_t, tex, sh


def test_render_views_layout_and_background():
    cams, X, faces, uv, tex, sh = scene()
    ctx = make_context("torch")
    X2 = torch.cat([X, X + torch.tensor([10.0, 0, 0], dtype=F64)])
    gains, bias = torch.ones(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64)
    bg = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    res = render_views(ctx, X2, faces, uv, faces, tex, sh, cams, gains, bias, bg, with_depth=True)
    assert isinstance(res, RenderResult)
    assert res.image.shape == (2, 2, 36, 48, 3) and res.mask.shape == (2, 2, 36, 48)
    empty = res.mask == 0
    assert empty.any() and (res.mask == 1).any()
    torch.testing.assert_close(res.image[empty], bg.expand(int(empty.sum()), 3))
    assert (res.depth[res.mask == 1] > 400).all() and (res.depth[empty] == 0).all()
    # Row 0 is the top: the plane's top edge (world +y, image up) bounds the face from above where cv2 says.
    rows = torch.nonzero(res.mask[0, 0] > 0.5)[:, 0]
    edge = np.stack([np.linspace(-30, 30, 61), np.full(61, 30.0), 0.2 * np.linspace(-30, 30, 61)], 1)
    top_v = cv2.projectPoints(edge, cv2.Rodrigues(cams.R[0].numpy())[0], cams.t[0].numpy(), cams.K[0].numpy(),
                              cams.dist[0].numpy())[0][:, 0, 1].min()
    assert abs(rows.min().item() - top_v) < 1.0
    # Per-camera images as background, and a gain of 2 on camera 1 doubles its face pixels.
    bg_img = torch.rand(2, 36, 48, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    gains2 = gains.clone()
    gains2[1] = 2.0
    res2 = render_views(ctx, X2, faces, uv, faces, tex, sh, cams, gains2, bias, bg_img)
    full = res.mask[0, 1] == 1
    torch.testing.assert_close(res2.image[0, 1][full], 2 * res.image[0, 1][full])
    torch.testing.assert_close(res2.image[1, 0][empty[1, 0]], bg_img[0][empty[1, 0]])
    with pytest.raises(ShapeError, match="sh must have 2 or 1 rows"):
        render_views(ctx, X2, faces, uv, faces, tex, sh.repeat(3, 1, 1), cams, gains, bias, bg)
    with pytest.raises(ShapeError, match="uv_faces must have shape"):
        render_views(ctx, X2, faces, uv, faces[:-1], tex, sh, cams, gains, bias, bg)


def test_render_gradients_reach_every_input():
    cams, X, faces, uv, tex, sh = scene(1, size=(24, 18))
    ctx = make_context("torch")
    gains, bias = torch.ones(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64)
    bg = torch.zeros(3, dtype=F64)
    # sh, gains, bias and texture enter linearly-smoothly: exact gradcheck in float64.
    def fn(tex_, sh_, gains_, bias_):
        return render_views(ctx, X, faces, uv, faces, tex_, sh_, cams, gains_, bias_, bg).image
    inputs = tuple(v.clone().requires_grad_(True) for v in (tex[:, :4, :4], sh, gains, bias))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, fast_mode=True)


def test_vertex_gradient_matches_finite_differences():
    """Moving one interior vertex changes shading and texture lookup smoothly: autograd vs central FD."""
    cams, X, faces, uv, tex, sh = scene(1, size=(48, 36))
    ctx = make_context("torch")
    gains, bias = torch.ones(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64)
    bg = torch.zeros(3, dtype=F64)
    weights = torch.rand(1, 1, 36, 48, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    vertex = 3 * 7 + 3

    def loss(V: torch.Tensor) -> torch.Tensor:
        return (render_views(ctx, V, faces, uv, faces, tex, sh, cams, gains, bias, bg, near_far=(100.0, 2000.0))
                .image * weights).sum()
    Xg = X.clone().requires_grad_(True)
    grad = torch.autograd.grad(loss(Xg), Xg)[0][0, vertex]
    eps = 1e-4
    fd = torch.zeros(3, dtype=F64)
    for k in range(3):
        d = torch.zeros_like(X)
        d[0, vertex, k] = eps
        fd[k] = (loss(X + d) - loss(X - d)) / (2 * eps)
    assert grad.abs().max() > 1e-3
    torch.testing.assert_close(grad, fd, rtol=0.05, atol=0.05 * fd.abs().max().item())


def test_silhouette_gradient_through_antialias():
    """Sliding the whole plane sideways changes coverage only: loose agreement with finite differences."""
    cams, X, faces, uv, tex, sh = scene(1, size=(48, 36))
    ctx = make_context("torch")
    ones, zeros = torch.ones(1, 3, dtype=F64), torch.zeros(1, 3, dtype=F64)
    white = torch.ones(1, 2, 2, 3, dtype=F64)
    flat = torch.zeros(1, 9, 3, dtype=F64)
    flat[0, 0] = 1 / 0.28209479177387814

    def coverage(shift: torch.Tensor) -> torch.Tensor:
        V = X + torch.stack([shift, torch.zeros_like(shift), torch.zeros_like(shift)])
        return render_views(ctx, V, faces, uv, faces, white, flat, cams, ones, zeros, torch.zeros(3, dtype=F64),
                            near_far=(100.0, 2000.0)).mask[..., :24].sum()
    s = torch.zeros((), dtype=F64, requires_grad=True)
    grad = torch.autograd.grad(coverage(s), s)[0]
    h = 2.0
    fd = (coverage(torch.tensor(h, dtype=F64)) - coverage(torch.tensor(-h, dtype=F64))) / (2 * h)
    assert grad.abs() > 0.1 and abs(grad - fd) < 0.3 * abs(fd)


def test_render_attribute_region_mask():
    cams, X, faces, *_ = scene(2)
    region = (X[0, :, 0] > 0).to(F64)[:, None]            # right half of the plane
    values, cover = render_attribute(make_context("torch"), X, faces, region, cams, lens="none")
    assert values.shape == (1, 2, 36, 48, 1) and cover.shape == (1, 2, 36, 48)
    assert values.min() >= 0 and values.max() <= 1 and (values > 0.99).any()
    assert ((values < 0.01) & (cover[..., None] > 0)).any()
    with pytest.raises(ShapeError, match="attr must have shape"):
        render_attribute(make_context("torch"), X, faces, region[:-1], cams)
