"""Random albedo: colours in range, regions where the rig's landmarks and materials put them."""

import numpy as np

from facecap.learn.albedo import AlbedoRegions, random_albedo
from facecap.rig import build_demo_head


def test_albedo_paints_lips_red_and_brows_dark_on_the_demo_head(rng):
    regions = AlbedoRegions.from_rig(build_demo_head())
    lips, brows = regions.in_lips, regions.brow_distance < 2.0
    assert lips.sum() > 20 and brows.sum() > 20
    skin = (regions.kind == "skin") & ~lips & (regions.brow_distance > 15.0) & (regions.positions[:, 2] > 40.0) \
        & (regions.positions[:, 1] < regions.brow_height)
    redness, darkness = [], []
    for _ in range(40):
        albedo = random_albedo(regions, rng)
        assert albedo.shape == (len(regions.positions), 3) and albedo.dtype == np.float32
        assert albedo.min() >= 0 and albedo.max() <= 1
        r = albedo[:, 0] / albedo.sum(1).clip(1e-6)
        redness.append(r[lips].mean() - r[skin].mean())
        darkness.append(albedo[skin].mean() - albedo[brows].mean())
    assert np.mean(redness) > 0.02 and np.mean(darkness) > 0.05
    assert np.std([random_albedo(regions, rng)[skin].mean() for _ in range(20)]) > 0.05     # skin tones vary
