"""The per-controller banded box QP against a dense reference (KKT conditions and scipy)."""

import numpy as np
import pytest
from scipy.optimize import minimize

from facecap.solve.banded_qp import banded_matvec, d2_gram_bands, solve_box_qp_banded


def _dense(bands):
    h0, h1, h2 = bands
    T = len(h0)
    H = np.diag(h0)
    i = np.arange(T)
    H[i[:-1], i[:-1] + 1] = H[i[:-1] + 1, i[:-1]] = h1
    H[i[:-2], i[:-2] + 2] = H[i[:-2] + 2, i[:-2]] = h2
    return H


def _random_problem(rng, T, mu):
    m0, m1, m2 = d2_gram_bands(T)
    bands = (rng.uniform(0.0, 2.0, T) + mu * m0, mu * m1, mu * m2)
    return bands, rng.normal(0.0, 2.0, T)


def test_d2_bands_match_dense_second_differences():
    for T in (1, 2, 3, 4, 9):
        D2 = np.diff(np.eye(T), n=2, axis=0)
        np.testing.assert_array_equal(_dense(d2_gram_bands(T)), D2.T @ D2)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("mu", [0.0, 0.5, 30.0])
def test_box_qp_is_exact(rng, T, mu):
    for _ in range(5):
        bands, c = _random_problem(rng, T, mu)
        lo, hi = np.zeros(T), np.ones(T)
        x, _ = solve_box_qp_banded(bands, c, lo, hi, rng.uniform(0, 1, T), tol=1e-12)
        H = _dense(bands)
        np.testing.assert_allclose(banded_matvec(bands, x), H @ x, atol=1e-12)
        g = H @ x + c
        # KKT: interior -> zero gradient; at 0 -> g >= 0; at 1 -> g <= 0.
        interior = (x > 1e-9) & (x < 1 - 1e-9)
        assert np.all(np.abs(g[interior]) < 1e-7)
        assert np.all(g[x <= 1e-9] > -1e-7) and np.all(g[x >= 1 - 1e-9] < 1e-7)
        ref = minimize(lambda v: 0.5 * v @ H @ v + c @ v, np.full(T, 0.5), jac=lambda v: H @ v + c,
                       bounds=[(0, 1)] * T, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
        f = 0.5 * x @ H @ x + c @ x
        assert f <= ref.fun + 1e-9


def test_box_qp_fixed_variables_stay(rng):
    bands, c = _random_problem(rng, 12, 5.0)
    lo, hi = np.zeros(12), np.ones(12)
    lo[:2] = hi[:2] = [0.3, 0.7]
    x, _ = solve_box_qp_banded(bands, c, lo, hi, np.zeros(12))
    np.testing.assert_array_equal(x[:2], [0.3, 0.7])
