"""The torch backend of the rasteriser ops against analytic truth, finite differences and grid_sample."""

import numpy as np
import pytest
import torch

from facecap.errors import FacecapError, ShapeError
from facecap.render import antialias, interpolate, make_context, rasterize, texture
from facecap.render.torch_raster import opposite_vertices

TRI1 = torch.tensor([[0, 1, 2]], dtype=torch.int32)


def _pixel_to_clip(px: np.ndarray, py: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """nvdiffrast's pixel centres: pixel (x, y) sits at clip ((2x + 1) / W - 1, (2y + 1) / H - 1)."""
    return (2 * px + 1) / width - 1, (2 * py + 1) / height - 1


def _ctx():
    return make_context("torch")


def test_single_triangle_coverage_and_barycentrics():
    height, width = 12, 16
    ndc = np.array([[-0.83, -0.71], [0.77, -0.52], [-0.41, 0.88]])
    pos = torch.tensor([[[x, y, 0.25, 1.0] for x, y in ndc]], dtype=torch.float64)
    rast, _ = rasterize(_ctx(), pos, TRI1, (height, width))
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = _pixel_to_clip(xs, ys, height, width)
    (x0, y0), (x1, y1), (x2, y2) = ndc
    den = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    b1 = ((cx - x0) * (y2 - y0) - (x2 - x0) * (cy - y0)) / den
    b2 = ((x1 - x0) * (cy - y0) - (cx - x0) * (y1 - y0)) / den
    inside = (b1 > 0) & (b2 > 0) & (b1 + b2 < 1)
    got = rast[0].numpy()
    np.testing.assert_array_equal(got[..., 3] == 1, inside)
    assert (got[..., 3][~inside] == 0).all() and (got[~inside] == 0).all()
    np.testing.assert_allclose(got[..., 0][inside], b1[inside], atol=1e-12)
    np.testing.assert_allclose(got[..., 1][inside], b2[inside], atol=1e-12)
    np.testing.assert_allclose(got[..., 2][inside], 0.25, atol=1e-12)


def test_row_zero_is_clip_y_minus_one():
    pos = torch.tensor([[[-1.0, -1.0, 0, 1], [1.0, -1.0, 0, 1], [-1.0, -0.5, 0, 1]]])
    rast, _ = rasterize(_ctx(), pos, TRI1, (8, 8))
    assert rast[0, 0, :, 3].sum() > 0 and rast[0, -1, :, 3].sum() == 0


def test_perspective_correct_barycentrics_reproduce_pixel_centres():
    """Interpolating clip positions with (u, v) must land on the pixel centre, and give its z/w."""
    height, width = 10, 14
    pos = torch.tensor([[[-1.6, -1.2, 0.5, 2.0], [0.9, -0.6, 0.1, 1.0], [-0.1, 2.1, 1.2, 3.0]]], dtype=torch.float64)
    rast, _ = rasterize(_ctx(), pos, TRI1, (height, width))
    clip, _ = interpolate(pos, rast, TRI1)
    mask = rast[0, ..., 3] > 0
    assert mask.sum() > 20
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    cx, cy = _pixel_to_clip(xs.double(), ys.double(), height, width)
    c = clip[0][mask]
    torch.testing.assert_close(c[:, 0] / c[:, 3], cx[mask])
    torch.testing.assert_close(c[:, 1] / c[:, 3], cy[mask])
    torch.testing.assert_close(rast[0, ..., 2][mask], c[:, 2] / c[:, 3])


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_nearer_triangle_wins_whatever_the_order(order):
    near = [[-0.8, -0.8, -0.2, 1], [0.6, -0.8, -0.2, 1], [-0.8, 0.6, -0.2, 1]]
    far = [[-0.6, -0.6, 0.4, 1], [0.8, -0.6, 0.4, 1], [0.8, 0.8, 0.4, 1]]
    pos = torch.tensor([near + far])
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)[order]
    rast, _ = rasterize(_ctx(), pos, tri, (16, 16))
    ids = rast[0, ..., 3]
    near_id = order.index(0) + 1
    assert (rast[0, ..., 2][ids == near_id] < 0).all() and (rast[0, ..., 2][ids == 3 - near_id] > 0).all()
    assert (ids == near_id).sum() > 40 and (ids == 3 - near_id).sum() > 10
    # A pixel inside both triangles: (x, y) = (5, 7) is inside near and far.
    assert ids[7, 5] == near_id


def test_depth_outside_clip_range_is_discarded():
    pos = torch.tensor([[[-0.8, -0.8, 1.5, 1], [0.8, -0.8, 1.5, 1], [0, 0.8, 1.5, 1]]])
    rast, _ = rasterize(_ctx(), pos, TRI1, (8, 8))
    assert rast.abs().sum() == 0


def _shifted(pos: torch.Tensor, dx_px: float, dy_px: float, height: int, width: int) -> torch.Tensor:
    """Move the image content by (-dx, -dy) pixels, so that pixel (x, y) sees what (x + dx, y + dy) saw."""
    shift = torch.tensor([-2 * dx_px / width, -2 * dy_px / height], dtype=pos.dtype)
    out = pos.clone()
    out[..., :2] = pos[..., :2] + shift * pos[..., 3:4]
    return out


def test_rast_db_and_out_da_match_finite_differences():
    height, width, step = 10, 12, 1e-4
    pos = torch.tensor([[[-1.6, -1.2, 0.5, 2.0], [0.9, -0.6, 0.1, 1.0], [-0.1, 2.1, 1.2, 3.0]]], dtype=torch.float64)
    attr = torch.tensor([[[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0]]], dtype=torch.float64)
    rast, rast_db = rasterize(_ctx(), pos, TRI1, (height, width))
    _, out_da = interpolate(attr, rast, TRI1, rast_db=rast_db, diff_attrs="all")
    mask = rast[0, ..., 3] > 0
    for axis in (0, 1):
        shift = (step, 0.0) if axis == 0 else (0.0, step)
        plus = rasterize(_ctx(), _shifted(pos, *shift, height, width), TRI1, (height, width))[0]
        minus = rasterize(_ctx(), _shifted(pos, -shift[0], -shift[1], height, width), TRI1, (height, width))[0]
        both = mask & (plus[0, ..., 3] > 0) & (minus[0, ..., 3] > 0)
        fd = (plus - minus)[0][both][:, :2] / (2 * step)
        torch.testing.assert_close(rast_db[0][both][:, [axis, 2 + axis]], fd, atol=1e-6, rtol=1e-5)
        fd_attr = (interpolate(attr, plus, TRI1)[0] - interpolate(attr, minus, TRI1)[0])[0][both] / (2 * step)
        torch.testing.assert_close(out_da[0][both][:, axis::2], fd_attr, atol=1e-6, rtol=1e-5)


def test_interpolate_gradcheck_attr_and_pos():
    pos = torch.tensor([[[-0.9, -0.7, 0.1, 1.1], [0.8, -0.8, 0.3, 1.3], [-0.2, 0.9, 0.2, 0.9],
                         [0.9, 0.7, 0.5, 1.2]]], dtype=torch.float64, requires_grad=True)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    attr = torch.randn(1, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def render(p, a):
        rast, rast_db = rasterize(_ctx(), p, tri, (5, 6))
        out, out_da = interpolate(a, rast, tri, rast_db=rast_db, diff_attrs=[1])
        return out, out_da

    assert torch.autograd.gradcheck(render, (pos, attr), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("boundary_mode", ["clamp", "wrap"])
def test_texture_gradcheck(boundary_mode):
    gen = torch.Generator().manual_seed(1)
    tex = torch.rand(2, 4, 5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    uv = (torch.rand(2, 3, 4, 2, dtype=torch.float64, generator=gen) * 1.4 - 0.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, c: texture(t, c, boundary_mode=boundary_mode), (tex, uv), eps=1e-7)
    assert torch.autograd.gradcheck(lambda t: texture(t, uv.detach(), filter_mode="nearest",
                                                      boundary_mode=boundary_mode), (tex,))


def test_texture_coordinates_follow_nvdiffrast():
    gen = torch.Generator().manual_seed(2)
    tex = torch.rand(1, 6, 8, 2, generator=gen, dtype=torch.float64)
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(8), indexing="ij")
    centres = torch.stack([(cols + 0.5) / 8, (rows + 0.5) / 6], -1)[None]  # texel centres: exact texels
    torch.testing.assert_close(texture(tex, centres), tex)
    torch.testing.assert_close(texture(tex, centres, filter_mode="nearest"), tex)
    uv = torch.rand(1, 5, 7, 2, generator=gen, dtype=torch.float64) * 1.6 - 0.3
    grid = 2 * uv - 1  # grid_sample with align_corners=False samples u * Wt - 0.5, border = clamp to edge centres
    expected = torch.nn.functional.grid_sample(tex.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border",
                                               align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(texture(tex, uv), expected)
    torch.testing.assert_close(texture(tex, uv, boundary_mode="wrap"), texture(tex, uv + 1.0, boundary_mode="wrap"))
    seam = texture(tex, torch.zeros(1, 1, 1, 2, dtype=torch.float64), boundary_mode="wrap")
    torch.testing.assert_close(seam[0, 0, 0], tex[0, [0, 0, -1, -1], [0, -1, 0, -1]].mean(0))


def test_opposite_vertices_of_a_quad():
    tri = torch.tensor([[0, 1, 2], [2, 1, 3]], dtype=torch.int32)
    # Edge 0 of triangle 0 is (1, 2), shared with triangle 1 whose opposite vertex is 3.
    assert opposite_vertices(tri).tolist() == [[3, -1, -1], [-1, -1, 0]]


def _quad(x_edge: float) -> torch.Tensor:
    return torch.tensor([[[-2.0, -2.0, 0, 1], [x_edge, -2.0, 0, 1], [-2.0, 2.0, 0, 1], [x_edge, 2.0, 0, 1]]],
                        dtype=torch.float64)


QUAD = torch.tensor([[0, 1, 2], [2, 1, 3]], dtype=torch.int32)


def test_antialias_vertical_edge_gives_box_filter_coverage():
    width = 10
    for edge_px in (4.2, 4.5, 4.8, 5.3):
        pos = _quad(2 * edge_px / width - 1)
        rast, _ = rasterize(_ctx(), pos, QUAD, (4, width))
        white = torch.ones(1, 4, width, 1, dtype=torch.float64) * (rast[..., 3:] > 0)
        out = antialias(white, rast, pos, QUAD)[0, 2, :, 0]
        coverage = np.clip(edge_px - np.arange(width), 0, 1)  # pixel x spans [x, x + 1]
        np.testing.assert_allclose(out.numpy(), coverage, atol=1e-9)


def test_antialias_gradient_matches_finite_differences():
    height, width = 12, 12
    pos = torch.tensor([[[-0.71, -0.63, 0.1, 1.0], [0.67, -0.38, 0.2, 1.1], [-0.29, 0.73, 0.3, 0.9],
                         [0.81, 0.69, 0.4, 1.05]]], dtype=torch.float64)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    colors = torch.tensor([[[1.0, 0.2], [0.3, 0.9], [0.6, 0.5], [0.1, 0.4]]], dtype=torch.float64)
    weights = torch.rand(1, height, width, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def loss(p):
        rast, _ = rasterize(_ctx(), p, tri, (height, width))
        color, _ = interpolate(colors, rast, tri)
        return (antialias(color, rast, p, tri) * weights).sum()

    p = pos.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(p), p)
    step = 1e-5
    fd = torch.zeros_like(pos)
    for idx in np.ndindex(*pos.shape[:2], 2):
        d = torch.zeros_like(pos)
        d[idx] = step
        fd[idx] = (loss(pos + d) - loss(pos - d)) / (2 * step)
    torch.testing.assert_close(grad[..., :2], fd[..., :2], atol=2e-3 * fd.abs().max().item(), rtol=0.05)
    assert grad[..., :2].abs().max() > 0.1


def test_antialias_color_gradient_is_linear_map():
    pos = _quad(0.13)
    rast, _ = rasterize(_ctx(), pos, QUAD, (4, 6))
    color = torch.rand(1, 4, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: antialias(c, rast, pos, QUAD), (color,))


def test_make_context_choices():
    assert make_context("torch").backend == "torch"
    assert make_context("auto", device="cpu").backend == "torch"
    with pytest.raises(FacecapError, match="backend must be"):
        make_context("opengl")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_nvdiffrast_backend_needs_cuda():
    with pytest.raises(FacecapError, match=r"pip install \.\[cuda\]"):
        make_context("nvdiffrast")


def test_input_guards():
    ctx = _ctx()
    pos = torch.zeros(1, 3, 4)
    rast = torch.zeros(1, 4, 4, 4)
    with pytest.raises(ShapeError, match="pos must have shape"):
        rasterize(ctx, torch.zeros(3, 4), TRI1, (4, 4))
    with pytest.raises(FacecapError, match="floating-point"):
        rasterize(ctx, torch.zeros(1, 3, 4, dtype=torch.int64), TRI1, (4, 4))
    with pytest.raises(FacecapError, match="tri must be an int32"):
        rasterize(ctx, pos, TRI1.float(), (4, 4))
    with pytest.raises(ShapeError, match="tri must have shape"):
        rasterize(ctx, pos, torch.zeros(2, 4, dtype=torch.int32), (4, 4))
    with pytest.raises(ShapeError, match="resolution"):
        rasterize(ctx, pos, TRI1, (0, 4))
    with pytest.raises(ShapeError, match="attr must have shape"):
        interpolate(torch.zeros(3), rast, TRI1)
    with pytest.raises(ShapeError, match="attr batch"):
        interpolate(torch.zeros(2, 3, 1), rast, TRI1)
    with pytest.raises(ShapeError, match="rast must have shape"):
        interpolate(torch.zeros(3, 1), rast[..., :3], TRI1)
    with pytest.raises(FacecapError, match="needs rast_db"):
        interpolate(torch.zeros(3, 1), rast, TRI1, diff_attrs="all")
    with pytest.raises(FacecapError, match="diff_attrs"):
        interpolate(torch.zeros(3, 1), rast, TRI1, rast_db=rast, diff_attrs=[1])
    uv = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ShapeError, match="uv must have shape"):
        texture(torch.zeros(1, 2, 2, 3), uv[..., :1])
    with pytest.raises(ShapeError, match="tex batch"):
        texture(torch.zeros(2, 2, 2, 3), uv)
    with pytest.raises(FacecapError, match="filter_mode"):
        texture(torch.zeros(1, 2, 2, 3), uv, filter_mode="linear-mipmap-linear")
    with pytest.raises(FacecapError, match="boundary_mode"):
        texture(torch.zeros(1, 2, 2, 3), uv, boundary_mode="cube")
    with pytest.raises(ShapeError, match="uv_da must have shape"):
        texture(torch.zeros(1, 2, 2, 3), uv, uv_da=uv)
    with pytest.raises(ShapeError, match="rast must have shape"):
        antialias(torch.zeros(1, 4, 5, 3), rast, pos, TRI1)
    with pytest.raises(ShapeError, match="pos must have shape"):
        antialias(torch.zeros(1, 4, 4, 3), rast, torch.zeros(2, 3, 4), TRI1)
