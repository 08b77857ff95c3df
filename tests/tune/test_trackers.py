"""The trackers: least squares (autograd-exact), its box active set, and the CD black-box adapter."""

import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from facecap.errors import ConfigError
from facecap.solve.cd import CDConfig
from facecap.tune.linear_rig import LinearRig
from facecap.tune.trackers import CDTracker, LeastSquaresTracker, LSTrackerConfig


def test_ls_methods_agree_on_full_rank(rng):
    D = rng.standard_normal((9, 3))
    c = rng.uniform(0.1, 0.9, (2, 3))
    rig = LinearRig.from_matrix(D)
    for method in ("lstsq", "pinv"):
        np.testing.assert_allclose(LeastSquaresTracker(LSTrackerConfig(method=method)).track(rig, c @ D.T), c,
                                   atol=1e-10)


def test_box_tracker_matches_bvls_and_gradcheck(rng):
    D = rng.standard_normal((15, 4))
    v = D @ np.array([0.5, 1.3, -0.2, 0.4]) + 0.01 * rng.standard_normal(15)
    tracker = LeastSquaresTracker(LSTrackerConfig(method="lstsq", box=True))
    c = tracker.track(LinearRig.from_matrix(D), v[None])[0]
    np.testing.assert_allclose(c, lsq_linear(D, v, bounds=(0, 1)).x, atol=1e-8)
    theta = torch.tensor(D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: tracker.track_torch(d, torch.as_tensor(v)[None]), (theta,))


def test_allowed_mask_pins_controls_at_zero(rng):
    D = rng.standard_normal((9, 3))
    v = (D @ np.array([0.3, 0.5, 0.2]))[None]
    allowed = np.array([[True, False, True]])
    for tracker in (LeastSquaresTracker(LSTrackerConfig(method="lstsq")),
                    CDTracker(CDConfig(lambda_l1=0.0, lambda_smooth=0.0, tol=1e-12))):
        c = tracker.track(LinearRig.from_matrix(D), v, allowed)
        assert c[0, 1] == 0.0


def test_cd_tracker_recovers_controls(rng):
    D = rng.standard_normal((30, 5))
    C = rng.uniform(0.1, 0.9, (3, 5))
    tracked = CDTracker(CDConfig(lambda_l1=0.0, lambda_smooth=0.0, tol=1e-14)).track(
        LinearRig.from_matrix(D), C @ D.T)
    np.testing.assert_allclose(tracked, C, atol=1e-5)


def test_ls_guards(rng):
    with pytest.raises(ConfigError, match="square"):
        LeastSquaresTracker(LSTrackerConfig(method="solve")).track(LinearRig.from_matrix(np.ones((4, 2))),
                                                                   np.ones((1, 4)))
    rig = LinearRig(np.ones((6, 2)), np.ones((6, 1)), np.array([[0, 1, -1, -1]]))
    with pytest.raises(ConfigError, match="correctives"):
        LeastSquaresTracker(LSTrackerConfig()).track(rig, np.ones((1, 6)))


def test_linear_rig_jacobian_with_correctives_matches_finite_differences(rng):
    rig = LinearRig(rng.standard_normal((6, 3)), rng.standard_normal((6, 1)), np.array([[0, 2, -1, -1]]))
    c = rng.uniform(0.2, 0.8, 3)
    eps = 1e-6
    fd = np.stack([(rig.evaluate((c + eps * e)[None])[0] - rig.evaluate((c - eps * e)[None])[0]) / (2 * eps)
                   for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(rig.jacobian(c), fd, atol=1e-8)
