"""Shading: normals, SH basis and lighting (analytic cases and gradcheck), UDIM atlas, compositing."""

import math

import pytest
import torch

from facecap.errors import ShapeError
from facecap.render.shading import (SH_C0, apply_camera_response, atlas_uv, composite, sh_basis, sh_from_lights,
                                    sh_irradiance, texture_atlas, vertex_normals)

F64 = torch.float64


def tetra() -> tuple[torch.Tensor, torch.Tensor]:
    verts = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=F64)
    faces = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    return verts, faces


def test_vertex_normals_of_a_regular_tetrahedron_point_outwards():
    verts, faces = tetra()
    n = vertex_normals(verts[None], faces)[0]
    torch.testing.assert_close(n, verts / math.sqrt(3))


def test_vertex_normals_of_a_batch_are_each_frames_own():
    """Frames are scattered together: a rotated and scaled frame beside the plain one gets its own normals."""
    verts, faces = tetra()
    angle = 0.7
    R = torch.tensor([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]],
                     dtype=F64)
    n = vertex_normals(torch.stack([verts, 2.5 * verts @ R.T]), faces)
    torch.testing.assert_close(n[0], verts / math.sqrt(3))
    torch.testing.assert_close(n[1], verts @ R.T / math.sqrt(3))


def test_vertex_normals_gradcheck():
    verts, faces = tetra()
    x = (verts + 0.1 * torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(0)))[None]
    assert torch.autograd.gradcheck(lambda v: vertex_normals(v, faces), (x.requires_grad_(True),))


def test_sh_basis_is_orthonormal_on_the_sphere():
    # Fibonacci sphere quadrature: the mean of Y_i Y_j times 4 pi is the identity.
    n = 20000
    k = torch.arange(n, dtype=F64) + 0.5
    z = 1 - 2 * k / n
    phi = math.pi * (1 + math.sqrt(5)) * k
    r = torch.sqrt(1 - z * z)
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)
    Y = sh_basis(dirs)
    gram = Y.T @ Y * (4 * math.pi / n)
    torch.testing.assert_close(gram, torch.eye(9, dtype=F64), atol=1e-3, rtol=0)


def test_sh_from_lights_approximates_lambert():
    ambient = torch.tensor([0.2, 0.3, 0.1], dtype=F64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=F64)
    col = torch.tensor([[1.0, 0.5, 0.25]], dtype=F64)
    sh = sh_from_lights(ambient, d, col)
    normals = torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, -1]], dtype=F64)
    E = sh_irradiance(normals[None], sh[None])[0]
    exact = ambient + col * torch.clamp(normals @ d.T, min=0)
    # Order-2 SH reproduces the clamped cosine within ~9% of the light (Ramamoorthi & Hanrahan).
    assert (E - exact).abs().max() < 0.1
    # A pure ambient light is exactly constant.
    flat = sh_from_lights(ambient, d, torch.zeros(1, 3, dtype=F64))
    torch.testing.assert_close(flat[0], ambient / SH_C0)
    torch.testing.assert_close(sh_irradiance(normals[None], flat[None])[0], ambient.expand(3, 3))


def test_sh_irradiance_gradcheck():
    g = torch.Generator().manual_seed(1)
    normals = torch.nn.functional.normalize(torch.randn(2, 5, 3, dtype=F64, generator=g), dim=-1)
    sh = torch.randn(2, 9, 3, dtype=F64, generator=g)
    assert torch.autograd.gradcheck(sh_irradiance, (normals.requires_grad_(True), sh.requires_grad_(True)))
    with pytest.raises(ShapeError, match="sh must have shape"):
        sh_irradiance(normals, torch.zeros(2, 4, 3, dtype=F64))


def test_atlas_uv_samples_the_right_tile_and_row():
    """Each tile holds a unique colour per row; atlas coordinates must land on the texel (tile, row, col)."""
    T, H, W = 2, 4, 8
    tex = torch.arange(T * H * W, dtype=F64).reshape(T, H, W, 1).expand(T, H, W, 3)
    atlas = texture_atlas(tex)
    assert atlas.shape == (1, H + 2, T * (W + 2), 3)
    # Texel centre (tile 1, row 0 = top = v near 1, column 2): u = 1 + (2 + 0.5) / W, v = 1 - 0.5 / H.
    uv = torch.tensor([[1 + 2.5 / W, 1 - 0.5 / H], [0.5 / W, 0.5 / H], [1 + 2.5 / W, 1 - 0.5 / H]], dtype=F64)
    coords = atlas_uv(uv, torch.tensor([[0, 2, 0], [1, 1, 1]]), (T, H, W))   # triangle 1 is all corner 1
    cols = (coords[:, 0] * atlas.shape[2] - 0.5).round().long()
    rows = (coords[:, 1] * atlas.shape[1] - 0.5).round().long()
    got = atlas[0, rows, cols, 0]
    torch.testing.assert_close(got[0], tex[1, 0, 2, 0])      # tile 1, top row
    torch.testing.assert_close(got[3], tex[0, H - 1, 0, 0])  # tile 0, bottom row, first column


def test_camera_response_and_composite():
    colour = torch.ones(1, 2, 2, 2, 3, dtype=F64)
    gains = torch.tensor([[2.0, 1, 1], [1, 1, 0.5]], dtype=F64)
    bias = torch.full((2, 3), 0.1, dtype=F64)
    out = apply_camera_response(colour, gains, bias)
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor([2.1, 1.1, 1.1], dtype=F64))
    alpha = torch.zeros(1, 2, 2, 2, dtype=F64)
    alpha[..., 0, 0] = 1
    bg = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    img = composite(out * alpha[..., None], alpha, bg)
    torch.testing.assert_close(img[0, 1, 1, 1], bg)
    torch.testing.assert_close(img[0, 1, 0, 0], out[0, 1, 0, 0])
    with pytest.raises(ShapeError, match="gains must have shape"):
        apply_camera_response(colour, gains[:1], bias)
    with pytest.raises(ShapeError, match="background must have shape"):
        composite(out, alpha, torch.zeros(3, 2, 2, 3, dtype=F64))
