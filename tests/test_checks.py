import numpy as np
import pytest
import torch

from facecap.checks import check_finite, check_shape
from facecap.errors import ShapeError


def test_binds_named_dims():
    assert check_shape(np.zeros((2, 5, 3)), "B V 3", "verts") == {"B": 2, "V": 5}
    assert check_shape(torch.zeros(4, 2, 7, 3), "* V 3", "verts") == {"V": 7}


@pytest.mark.parametrize("shape, spec, match", [
    ((2, 5, 2), "B V 3", r"verts must have shape \[B, V, 3\], got \[2, 5, 2\]"),
    ((5, 3), "B V 3", r"got \[5, 3\]"),
    ((2, 5, 3), "V V 3", r"dim V is both 2 and 5"),
])
def test_mismatch_messages(shape, spec, match):
    with pytest.raises(ShapeError, match=match):
        check_shape(np.zeros(shape), spec, "verts")


def test_check_finite_counts():
    check_finite(np.ones(3), "x")
    with pytest.raises(ValueError, match="x has 2 non-finite"):
        check_finite(torch.tensor([1.0, float("nan"), float("inf")]), "x")
