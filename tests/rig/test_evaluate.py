"""evaluate_rig (numpy) against TorchRig, analytic correctives, gradients and units."""

import numpy as np
import pytest
import torch

from facecap.errors import ShapeError
from facecap.geometry.rotations import matrix_from_euler_xyz, rotation_6d_to_matrix
from facecap.rig import TorchRig, corrective_activations, corrective_jacobian, evaluate_rig
from tests.conftest import DTYPE_TOLERANCE
from tests.rig.rig_factory import tiny_rig


@pytest.fixture
def rig(rng):
    return tiny_rig(rng)


def _pose(rng, B):
    return matrix_from_euler_xyz(rng.uniform(-1, 1, size=(B, 3))), rng.normal(size=(B, 3))


def test_numpy_matches_torch(rig, rng, dtype, device):
    B = 5
    w = rng.uniform(size=(B, rig.num_shapes))
    ident = rng.normal(size=(B, rig.num_identities))
    R, t = _pose(rng, B)
    ref = evaluate_rig(rig, w, identity=ident, R=R, t=t)
    trig = TorchRig.from_rig(rig, device=device, dtype=dtype)

    def T(a):
        return torch.as_tensor(a, device=device, dtype=dtype)

    got = trig.evaluate(T(w), R=T(R), t=T(t), identity=T(ident))
    assert got.dtype == dtype and got.device.type == device.type
    np.testing.assert_allclose(got.cpu().double().numpy(), ref, **DTYPE_TOLERANCE[dtype])


def test_vertex_subset_matches_full(rig, rng):
    w = rng.uniform(size=(2, rig.num_shapes))
    idx = np.array([5, 0, 3])
    full = evaluate_rig(rig, w, identity=np.ones(2))
    np.testing.assert_allclose(evaluate_rig(rig, w, identity=np.ones(2), vertices=idx), full[:, idx], atol=1e-12)
    trig = TorchRig.from_rig(rig, dtype=torch.float64, vertices=idx)
    np.testing.assert_allclose(trig.evaluate(torch.as_tensor(w), identity=torch.ones(2, dtype=torch.float64))
                               .numpy(), full[:, idx], atol=1e-12)


def test_single_frame_and_head_space(rig, rng):
    w = rng.uniform(size=rig.num_shapes)
    X = evaluate_rig(rig, w)
    assert X.shape == (rig.num_vertices, 3)
    np.testing.assert_allclose(X, evaluate_rig(rig, w[None])[0])
    R, t = _pose(rng, 1)
    np.testing.assert_allclose(evaluate_rig(rig, w, R=R[0], t=t[0]), X @ R[0].T + t[0], atol=1e-12)


def test_correctives_are_products_of_weights(rig):
    """Analytic case: 0 -> neutral; jawOpen=a, mouthFunnel=b, eyeBlink_L=c gives a*b and a*b*c correctives."""
    a, b, c = 0.3, 0.7, 0.5
    expected = (rig.neutral + a * rig.shape_deltas[0] + b * rig.shape_deltas[1] + c * rig.shape_deltas[2]
                + a * b * rig.corrective_deltas[0] + a * b * c * rig.corrective_deltas[1])
    np.testing.assert_allclose(evaluate_rig(rig, np.array([a, b, c])), expected, atol=1e-12)
    np.testing.assert_allclose(evaluate_rig(rig, np.zeros(3)), rig.neutral, atol=0)
    acts = corrective_activations(np.array([[a, b, c]]), rig.corrective_keys)
    np.testing.assert_allclose(acts, [[a * b, a * b * c]])
    acts_t = corrective_activations(torch.tensor([[a, b, c]], dtype=torch.float64), rig.corrective_keys)
    np.testing.assert_allclose(acts_t.numpy(), acts)


def test_corrective_jacobian_matches_finite_differences(rng):
    """The closed form against central differences of the activations, with unused slots, a key used
    twice (w² has slope 2w) and keys that share a shape."""
    keys = np.array([[0, 1, -1, -1], [0, 1, 2, -1], [2, 2, -1, -1], [3, 0, 2, 1]])
    w = torch.as_tensor(rng.uniform(0.1, 0.9, size=(2, 3, 5)))
    J = corrective_jacobian(w, keys)
    assert J.shape == (2, 3, 4, 5)
    h = 1e-6
    for k in range(5):
        step = torch.zeros(5, dtype=torch.float64)
        step[k] = h
        fd = (corrective_activations(w + step, keys) - corrective_activations(w - step, keys)) / (2 * h)
        torch.testing.assert_close(J[..., k], fd, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(J[0, 0, 2, 2], 2 * w[0, 0, 2])


def test_no_correctives(rng):
    rig = tiny_rig(rng, correctives=False, extras=False)
    w = rng.uniform(size=(2, 3))
    np.testing.assert_allclose(evaluate_rig(rig, w), rig.neutral + np.einsum("bk,kvd->bvd", w, rig.shape_deltas))
    assert corrective_activations(w, rig.corrective_keys).shape == (2, 0)


def test_gradients_match_finite_differences(rig, rng):
    trig = TorchRig.from_rig(rig, dtype=torch.float64)
    B = 2
    w = torch.tensor(rng.uniform(0.1, 0.9, size=(B, rig.num_shapes)), requires_grad=True)
    ident = torch.tensor(rng.normal(size=(B, rig.num_identities)), requires_grad=True)
    d6 = torch.tensor(rng.normal(size=(B, 6)), requires_grad=True)
    t = torch.tensor(rng.normal(size=(B, 3)), requires_grad=True)

    def f(w, ident, d6, t):
        return trig.evaluate(w, R=rotation_6d_to_matrix(d6), t=t, identity=ident)

    assert torch.autograd.gradcheck(f, (w, ident, d6, t), eps=1e-6, atol=1e-7)


def test_gradient_with_respect_to_the_rig(rig, rng):
    trig = TorchRig.from_rig(rig, dtype=torch.float64)
    w = torch.tensor(rng.uniform(size=(2, rig.num_shapes)))

    def f(shape_deltas, corrective_deltas):
        trig.shape_deltas, trig.corrective_deltas = shape_deltas, corrective_deltas
        return trig.evaluate(w)

    args = (trig.shape_deltas.clone().requires_grad_(), trig.corrective_deltas.clone().requires_grad_())
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


def test_units_conversion(rig, rng):
    w = rng.uniform(size=(2, rig.num_shapes))
    ident = rng.normal(size=rig.num_identities)
    in_mm = rig.in_units("mm")
    assert in_mm.units == "mm" and rig.in_units("cm") is rig
    np.testing.assert_allclose(evaluate_rig(in_mm, w, identity=ident), 10 * evaluate_rig(rig, w, identity=ident),
                               rtol=1e-12)
    np.testing.assert_allclose(rig.in_units("m").neutral, rig.neutral / 100, rtol=1e-12)


def test_weight_shape_is_checked(rig):
    with pytest.raises(ShapeError, match=r"weights must have shape \[B, 3\]"):
        evaluate_rig(rig, np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="weights"):
        TorchRig.from_rig(rig).evaluate(torch.zeros(2, 5))
