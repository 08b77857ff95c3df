"""The head's outline against a plain background: mask and signed distance against analytic shapes."""

import numpy as np
from scipy.ndimage import distance_transform_edt

from facecap.take.silhouette import foreground_mask, signed_distance, silhouette_distance

H, W = 240, 320
CENTRE, RADIUS = np.array([150.0, 130.0]), 70.0


def _disc_on_shaded_backdrop(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A textured disc on a backdrop lit unevenly (a cubic colour ramp), 2 grey levels of noise;
    and the disc's true signed distance (pixel centres at integers)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    u, v = x / W - 0.5, y / H - 0.5
    backdrop = np.stack([0.45 + 0.2 * u - 0.15 * v * v + 0.3 * u ** 3, 0.5 - 0.1 * v + 0.1 * u * v,
                         0.7 + 0.1 * u - 0.2 * v], -1)
    distance = np.hypot(x - CENTRE[0], y - CENTRE[1]) - RADIUS
    coverage = np.clip(0.5 - distance, 0, 1)[..., None]           # anti-aliased edge
    skin = np.array([0.7, 0.45, 0.35]) * (0.8 + 0.2 * np.sin(x / 7) * np.cos(y / 5))[..., None]
    image = coverage * skin + (1 - coverage) * backdrop + rng.normal(0, 2 / 255, (H, W, 3))
    return image.astype(np.float32), distance


def test_signed_distance_of_a_disc_on_an_unevenly_lit_backdrop():
    image, truth = _disc_on_shaded_backdrop(np.random.default_rng(0))
    mask = foreground_mask(image)
    assert mask is not None
    assert (mask != (truth < 0)).sum() < 0.5 * 2 * np.pi * RADIUS      # within half a pixel along the outline
    distance = silhouette_distance(image)
    near = np.abs(truth) < 20
    error = (distance - truth)[near]
    print(f"signed distance error within 20 px of the outline: mean {error.mean():.2f}, "
          f"mean abs {np.abs(error).mean():.2f}, max abs {np.abs(error).max():.2f} px")
    # A pixel a fifth covered already differs from the backdrop: the outline sits a third of a pixel out.
    assert np.abs(error).mean() < 0.5 and np.abs(error).max() < 1.2
    assert distance.max() == 64.0                                   # clipped far from the outline


def test_a_cluttered_background_has_no_silhouette():
    image, _ = _disc_on_shaded_backdrop(np.random.default_rng(1))
    clutter = np.random.default_rng(2).uniform(0, 1, (H // 8, W // 8, 3)).repeat(8, 0).repeat(8, 1)
    image[:40], image[:, :40], image[:, -40:] = clutter[:40], clutter[:, :40], clutter[:, -40:]
    assert foreground_mask(image) is None
    assert silhouette_distance(image) is None


def test_signed_distance_is_the_exact_euclidean_one_wherever_the_head_lies():
    """Against SciPy's exact Euclidean distance transform of the whole image: a blob with a hole in the
    middle, one cut by the image's border, a one-pixel mask; an empty mask is everywhere as far as the clip."""
    y, x = np.mgrid[0:120, 0:160]
    centre = np.hypot(x - 80, y - 60)
    masks = {"blob with a hole": (centre < 30) & (centre > 8), "cut by the border": np.hypot(x - 5, y - 110) < 25,
             "one pixel": (x == 40) & (y == 30)}
    for name, mask in masks.items():
        expected = np.clip(np.where(mask, 0.5 - distance_transform_edt(mask), distance_transform_edt(~mask) - 0.5),
                           -20, 20)
        np.testing.assert_allclose(signed_distance(mask, 20.0), expected, atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(signed_distance(np.zeros((120, 160), bool), 20.0), 20.0)
