"""Eq. 25 implicit derivatives and the eq. 23 Broyden estimate against autograd (float64)."""

import numpy as np
import pytest
import torch

from facecap.errors import ConfigError
from facecap.tune.implicit import BroydenJacobian, adjoint, rig_theta_jacobian, tracker_jacobian
from facecap.tune.linear_rig import LinearRig
from facecap.tune.trackers import LeastSquaresTracker, LSTrackerConfig


def _autograd_jacobians(tracker, D, v):
    """Exact ∂T/∂θ [K, P] and ∂v̂/∂θ [n, P] for θ = all entries of D (row-major, eq. 29's order)."""
    def track(theta):
        return tracker.track_torch(theta.reshape(D.shape), v[None])[0]

    def vhat(theta):
        return theta.reshape(D.shape) @ track(theta)

    theta = torch.as_tensor(D.ravel())
    return (torch.autograd.functional.jacobian(track, theta).numpy(),
            torch.autograd.functional.jacobian(vhat, theta).numpy())


@pytest.mark.parametrize("method", ["lstsq", "pinv", "lm"])
def test_eq25_with_exact_dvhat_matches_autograd(rng, method):
    n, K = 12, 4
    D = rng.standard_normal((n, K))
    v = torch.as_tensor(rng.standard_normal(n))
    tracker = LeastSquaresTracker(LSTrackerConfig(method="ridge", ridge=1e-2))
    dT, dvhat = _autograd_jacobians(tracker, D, v)
    c = tracker.track(LinearRig.from_matrix(D), v.numpy()[None])[0]
    rhs = -rig_theta_jacobian(c, np.ones((n, K), bool)) + dvhat
    X = tracker_jacobian(D, rhs, method, damping=0.0)
    np.testing.assert_allclose(X, dT, atol=1e-9)
    g = rng.standard_normal(K)
    lam = adjoint(D, g, method, 0.0)
    np.testing.assert_allclose(lam @ rhs, g @ dT, atol=1e-9)


def test_exact_inverse_has_zero_dvhat(rng):
    """With a square, exactly inverted rig v̂ = v, so ∂v̂/∂θ = 0 (section 7, eq. 33)."""
    D = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    _, dvhat = _autograd_jacobians(LeastSquaresTracker(LSTrackerConfig(method="solve")), D,
                                   torch.as_tensor(rng.standard_normal(3)))
    assert np.abs(dvhat).max() < 1e-12


def test_broyden_secant_and_convergence(rng):
    N, n, P = 2, 5, 6
    J_true = rng.standard_normal((N, n, P))
    est = BroydenJacobian(N, n, P, max_rank=P)
    u = rng.standard_normal(P)
    est.update(u, J_true @ (u / np.linalg.norm(u)))
    np.testing.assert_allclose(est.apply(u / np.linalg.norm(u)), J_true @ (u / np.linalg.norm(u)), atol=1e-12)
    errors = []
    for _ in range(200):                                     # random directions: the estimate converges
        d = rng.standard_normal(P)
        est.update(d, J_true @ (d / np.linalg.norm(d)))
        errors.append(np.linalg.norm(est.dense(0) - J_true[0]))
    assert errors[-1] < 1e-4 * errors[0]
    lam = rng.standard_normal((N, n))
    np.testing.assert_allclose(est.apply_transpose(lam), np.einsum("knp,kn->kp", J_true, lam), atol=1e-4)


def test_broyden_compression_keeps_rank(rng):
    est = BroydenJacobian(3, 4, 10, max_rank=2)
    for _ in range(5):
        est.update(rng.standard_normal(10), rng.standard_normal((3, 4)))
    assert est.U.shape == (10, 2) and est.A.shape == (3, 4, 2)
    np.testing.assert_allclose(est.U.T @ est.U, np.eye(2), atol=1e-10)


def test_guards():
    with pytest.raises(ConfigError, match="max_rank"):
        BroydenJacobian(1, 3, 3, max_rank=0)
    with pytest.raises(ConfigError, match="non-zero"):
        BroydenJacobian(1, 3, 3).update(np.zeros(3), np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="implicit method"):
        adjoint(np.eye(3), np.ones(3), "qr")
