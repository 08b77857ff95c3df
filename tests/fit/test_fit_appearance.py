"""The closed-form appearance solve and the photometric sample selection."""

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors, world_to_camera
from facecap.fit.appearance import (Appearance, facing_cosine, photometric_samples, sample_images, sample_points,
                                    solve_appearance)
from facecap.render.shading import sh_basis
from facecap.rig import build_demo_head


def test_solve_appearance_recovers_an_exact_model():
    """Colours made by the model itself: alternating least squares must explain them to noise-free precision."""
    gen = torch.Generator().manual_seed(0)
    B, C, N = 4, 3, 400
    normals = torch.nn.functional.normalize(torch.randn(B, N, 3, generator=gen, dtype=torch.float64), dim=-1)
    basis = sh_basis(normals)
    truth = Appearance(albedo=0.2 + 0.6 * torch.rand(N, 3, generator=gen, dtype=torch.float64),
                       sh=torch.randn(9, 3, generator=gen, dtype=torch.float64) * 0.2
                       + torch.tensor([3.0] + [0.0] * 8, dtype=torch.float64)[:, None],
                       gains=1 + 0.1 * torch.randn(C, 3, generator=gen, dtype=torch.float64),
                       bias=0.02 * torch.randn(C, 3, generator=gen, dtype=torch.float64))
    observed = truth.predict(basis)
    weight = torch.ones_like(observed)
    estimate = Appearance.neutral(observed.mean((0, 1)), C)
    first = None
    for _ in range(200):
        estimate, stats = solve_appearance(estimate, None, observed, weight, basis)
        error = float((estimate.predict(basis) - observed).abs().max())
        first = error if first is None else first
    assert error < 1e-3 * first and error < 1e-4
    # A take is solved a batch at a time: the committed normal equations of the first half plus the
    # second half's give the same camera response as the whole take at once.
    _, first_half = solve_appearance(estimate, None, observed[:2], weight[:2], basis[:2])
    split, _ = solve_appearance(estimate, first_half, observed[2:], weight[2:], basis[2:])
    whole, _ = solve_appearance(estimate, None, observed, weight, basis)
    torch.testing.assert_close(split.gains, whole.gains)
    torch.testing.assert_close(split.bias, whole.bias)


def test_image_samplers_interpolate_a_ramp_exactly_and_agree():
    """Bilinear sampling reproduces a linear ramp exactly inside the image (pixel centres at integers)
    and clamps to the border outside it; the scattered-point sampler matches the batched one."""
    gen = torch.Generator().manual_seed(1)
    B, C, H, W = 2, 3, 24, 32
    y, x = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    slopes = torch.rand(B, C, 2, 1, 1, generator=gen, dtype=torch.float64)
    images = torch.stack([slopes[:, :, 0] * x + slopes[:, :, 1] * y, torch.ones(B, C, H, W, dtype=torch.float64)], 2)
    pixels = torch.rand(B, C, 50, 2, generator=gen, dtype=torch.float64) * torch.tensor([W + 8.0, H + 8.0]) - 4
    clamped = torch.stack([pixels[..., 0].clamp(0, W - 1), pixels[..., 1].clamp(0, H - 1)], -1)
    ramp = (slopes[:, :, 0, 0] * clamped[..., 0] + slopes[:, :, 1, 0] * clamped[..., 1])
    batched = sample_images(images, pixels)                                   # [B, C, 50, 2]
    torch.testing.assert_close(batched[..., 0], ramp)
    torch.testing.assert_close(batched[..., 1], torch.ones_like(ramp))
    frame, camera = torch.meshgrid(torch.arange(B), torch.arange(C), indexing="ij")
    scattered = sample_points(images, frame.flatten(), camera.flatten(), pixels.flatten(0, 1))
    torch.testing.assert_close(scattered, batched.flatten(0, 1))


def test_photometric_samples_leave_out_excluded_and_see_through_materials():
    rig = build_demo_head()
    every = photometric_samples(rig, [])
    no_mouth = photometric_samples(rig, ["mouth_interior"])
    mouth = rig.material_names.index("mouth_interior")
    mouth_only = np.setdiff1d(np.unique(rig.faces[rig.face_material == mouth]),
                              np.unique(rig.faces[rig.face_material != mouth]))
    assert len(no_mouth) < len(every)
    assert not np.isin(mouth_only, no_mouth).any() and np.isin(mouth_only, every).all()


def test_facing_cosine_is_the_angle_between_normal_and_view_ray():
    """A camera at the origin looking down +z (identity pose) and points on its optical axis and off it."""
    cams = CameraTensors(K=torch.eye(3)[None], dist=torch.zeros(1, 14), R=torch.eye(3)[None], t=torch.zeros(1, 3),
                         image_sizes=torch.tensor([[100, 100]]), names=("cam",))
    points = torch.tensor([[[0.0, 0, 10], [0, 0, 10], [0, 0, 10], [10, 0, 10]]])
    normals = torch.tensor([[[0.0, 0, -1], [0, 0, 1], [1, 0, 0], [0, 0, -1]]])
    cosine = facing_cosine(world_to_camera(points, cams), normals, cams)
    torch.testing.assert_close(cosine, torch.tensor([[[1.0, -1.0, 0.0, 2 ** -0.5]]]))
