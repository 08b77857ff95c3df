"""Input guards that raise (never assert) with expected-versus-got messages."""

from typing import Any

import numpy as np

from facecap.errors import ShapeError

__all__ = ["check_shape", "check_finite"]


def check_shape(x: Any, spec: str, name: str) -> dict[str, int]:
    """Check that ``x.shape`` matches ``spec`` and return the sizes bound to symbolic dims.

    ``spec`` is space-separated: an integer fixes a dim, a name binds it (repeated names must
    agree), ``_`` matches anything, and a leading ``*`` matches any number of leading dims.
    Example: ``check_shape(verts, "B V 3", "verts")`` returns ``{"B": 4, "V": 9409}``.
    """
    shape = tuple(int(s) for s in x.shape)
    tokens = spec.split()
    star = bool(tokens) and tokens[0] == "*"
    if star:
        tokens = tokens[1:]
    if len(shape) < len(tokens) or (not star and len(shape) != len(tokens)):
        raise ShapeError(f"{name} must have shape [{spec.replace(' ', ', ')}], got {list(shape)}")
    dims = shape[len(shape) - len(tokens):]
    bound: dict[str, int] = {}
    for token, size in zip(tokens, dims):
        if token == "_":
            continue
        if token.isdigit():
            if int(token) != size:
                raise ShapeError(f"{name} must have shape [{spec.replace(' ', ', ')}], got {list(shape)}")
        elif bound.setdefault(token, size) != size:
            raise ShapeError(f"{name}: dim {token} is both {bound[token]} and {size} in shape {list(shape)}")
    return bound


def check_finite(x: Any, name: str) -> None:
    """Raise if an array or tensor holds NaN or infinity, saying how many entries do."""
    bad = int((~np.isfinite(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x))).sum())
    if bad:
        raise ValueError(f"{name} has {bad} non-finite entries (NaN or inf)")
