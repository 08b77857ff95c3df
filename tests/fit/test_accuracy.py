"""Per-shape weight errors, on animations whose errors are known by construction."""

import numpy as np
import pytest

from facecap.animation import Animation
from facecap.fit.accuracy import animation_accuracy, weight_errors_by_shape
from facecap.rig import build_demo_head


def test_weight_errors_by_shape_split_the_mae_into_bias_and_noise():
    rig = build_demo_head()
    T = 4
    truth_weights = np.full((T, rig.num_shapes), 0.5)
    fit_weights = truth_weights.copy()
    held_low, noisy = rig.shape_names[3], rig.shape_names[7]
    fit_weights[:, 3] -= 0.2                              # held low on every frame: bias -0.2
    fit_weights[:, 7] += [0.1, -0.1, 0.1, -0.1]           # noisy, unbiased
    pose = dict(R=np.repeat(np.eye(3)[None], T, 0), t=np.zeros((T, 3)))
    truth = Animation(rig.shape_names, truth_weights, **pose)
    fit = Animation(rig.shape_names, fit_weights, **pose)

    errors = weight_errors_by_shape(rig, fit, truth)
    assert [e.name for e in errors[:2]] == [held_low, noisy]
    assert (errors[0].mae, errors[0].bias, errors[0].share) == pytest.approx((0.2, -0.2, 2 / 3))
    assert (errors[1].mae, errors[1].bias, errors[1].share) == pytest.approx((0.1, 0.0, 1 / 3))
    assert len(errors) == rig.num_shapes and all(e.mae == 0 for e in errors[2:])
    mae_all = animation_accuracy(rig, fit, truth).weight_mae_all
    assert sum(e.mae for e in errors) / rig.num_shapes == pytest.approx(mae_all)
