"""Meshes from weights: numpy (float64, CPU solvers) and torch (any device, differentiable).

Both follow docs/formats.md §3:
``X_head = neutral + identity @ identity_deltas + w @ shape_deltas + c(w) @ corrective_deltas``
with corrective activations ``c_j(w) = prod_i w[keys[j, i]]`` over the used key slots, then
``X_world = R @ X_head + t``. Lengths are in the rig's units; convert the rig first
(:meth:`Rig.in_units`) to work in a calibration's units.
"""

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from facecap.checks import check_shape
from facecap.rig.model import Rig

__all__ = ["corrective_activations", "corrective_jacobian", "evaluate_rig", "TorchRig"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def corrective_activations(weights: Array, keys: np.ndarray | torch.Tensor) -> Array:
    """Products of key weights, for numpy arrays or torch tensors alike.

    Args:
        weights: [..., K] shape weights.
        keys: [C, 4] int shape indices per corrective; -1 marks an unused slot.
    Returns:
        [..., C] corrective activations.
    """
    if keys.shape[0] == 0:
        return weights[..., :0]
    is_torch = isinstance(weights, torch.Tensor)
    lib = torch if is_torch else np
    keys_t = torch.as_tensor(keys, device=weights.device, dtype=torch.long) if is_torch else np.asarray(keys)
    used = keys_t >= 0
    gathered = weights[..., keys_t.clamp(min=0) if is_torch else np.maximum(keys_t, 0)]
    ones = lib.ones_like(gathered)
    return lib.where(used, gathered, ones).prod(-1)


def corrective_jacobian(weights: torch.Tensor, keys: np.ndarray | torch.Tensor) -> torch.Tensor:
    """d(corrective activations)/d(weights): [..., C, K] for weights [..., K], in closed form.

    A corrective is the product of its key weights, so its derivative along a key is the product of
    the other slots (a key that appears twice, w², gets both slots' terms: 2w).
    """
    keys_t = torch.as_tensor(keys, device=weights.device, dtype=torch.long)
    used = keys_t >= 0
    key = keys_t.clamp(min=0)
    factors = torch.where(used, weights[..., key], torch.ones((), dtype=weights.dtype, device=weights.device))
    slots = keys_t.shape[-1]
    others = torch.eye(slots, dtype=torch.bool, device=weights.device)          # [slot, slot]: which to leave out
    partial = torch.where(others, torch.ones_like(factors[..., None, :]), factors[..., None, :]).prod(-1)
    partial = partial * used                                                   # [..., C, slots]
    out = weights.new_zeros(*weights.shape[:-1], keys_t.shape[0], weights.shape[-1])
    return out.scatter_add_(-1, key.expand_as(partial), partial)


def _as_batch(weights: np.ndarray, K: int) -> tuple[np.ndarray, bool]:
    w = np.asarray(weights, dtype=np.float64)
    single = w.ndim == 1
    w = w[None] if single else w
    check_shape(w, f"B {K}", "weights")
    return w, single


def evaluate_rig(rig: Rig, weights: np.ndarray, identity: np.ndarray | None = None,
                 R: np.ndarray | None = None, t: np.ndarray | None = None,
                 vertices: np.ndarray | None = None) -> np.ndarray:
    """Posed meshes in float64.

    Args:
        rig: the rig; lengths stay in ``rig.units``.
        weights: [B, K] or [K] shape weights.
        identity: [I] or [B, I] identity coefficients, or None for the rig's neutral.
        R, t: [B, 3, 3] and [B, 3] (or [3, 3], [3]) head-to-world pose, or None for head space.
        vertices: [N] vertex indices to evaluate (e.g. landmarks), or None for all.
    Returns:
        [B, N, 3] vertices (or [N, 3] when ``weights`` was [K]).
    """
    w, single = _as_batch(weights, rig.num_shapes)
    idx = slice(None) if vertices is None else np.asarray(vertices)
    neutral = rig.neutral[idx]
    N = neutral.shape[0]
    verts = np.broadcast_to(neutral, (w.shape[0], N, 3)).copy()
    if identity is not None and rig.num_identities:
        ident = np.asarray(identity, dtype=np.float64)
        verts += np.einsum("...i,ivd->...vd", ident, rig.identity_deltas[:, idx])
    verts += np.einsum("bk,kvd->bvd", w, rig.shape_deltas[:, idx])
    if rig.num_correctives:
        c = corrective_activations(w, rig.corrective_keys)
        verts += np.einsum("bc,cvd->bvd", c, rig.corrective_deltas[:, idx])
    if R is not None:
        R = np.asarray(R, dtype=np.float64)
        verts = np.einsum("bij,bvj->bvi", np.broadcast_to(R, (verts.shape[0], 3, 3)), verts)
    if t is not None:
        t = np.asarray(t, dtype=np.float64)
        verts = verts + (t[:, None] if t.ndim == 2 else t)
    return verts[0] if single else verts


@dataclass
class TorchRig:
    """The rig's geometry as tensors on one device, for batched differentiable evaluation.

    The delta tensors are ordinary tensors: set ``requires_grad`` on them to differentiate with
    respect to the rig itself (rig tuning does).

    Attributes:
        neutral: [N, 3]; shape_deltas: [K, N, 3]; corrective_deltas: [C, N, 3];
        identity_deltas: [I, N, 3]; corrective_keys: [C, 4] long; vertices: the [N] rig vertex
        indices these rows stand for (None when all).
    """

    neutral: torch.Tensor
    shape_deltas: torch.Tensor
    corrective_keys: torch.Tensor
    corrective_deltas: torch.Tensor
    identity_deltas: torch.Tensor
    vertices: np.ndarray | None = None

    @classmethod
    def from_rig(cls, rig: Rig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 vertices: np.ndarray | None = None) -> "TorchRig":
        """Move ``rig`` (optionally only ``vertices``) to ``device`` as ``dtype`` tensors."""
        idx = slice(None) if vertices is None else np.asarray(vertices)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dtype)

        return cls(neutral=tensor(rig.neutral[idx]), shape_deltas=tensor(rig.shape_deltas[:, idx]),
                   corrective_keys=torch.as_tensor(rig.corrective_keys, device=device, dtype=torch.long),
                   corrective_deltas=tensor(rig.corrective_deltas[:, idx]),
                   identity_deltas=tensor(rig.identity_deltas[:, idx]),
                   vertices=None if vertices is None else np.asarray(vertices))

    def head_space(self, weights: torch.Tensor, identity: torch.Tensor | None = None) -> torch.Tensor:
        """[B, N, 3] head-space meshes from [B, K] weights and an optional [I] or [B, I] identity."""
        check_shape(weights, f"B {self.shape_deltas.shape[0]}", "weights")
        B = weights.shape[0]
        N = self.neutral.shape[0]
        verts = self.neutral.expand(B, N, 3)
        if identity is not None and self.identity_deltas.shape[0]:
            verts = verts + torch.einsum("...i,ivd->...vd", identity, self.identity_deltas)
        verts = verts + (weights @ self.shape_deltas.reshape(self.shape_deltas.shape[0], -1)).reshape(B, N, 3)
        if self.corrective_deltas.shape[0]:
            c = corrective_activations(weights, self.corrective_keys)
            verts = verts + (c @ self.corrective_deltas.reshape(c.shape[-1], -1)).reshape(B, N, 3)
        return verts

    def evaluate(self, weights: torch.Tensor, R: torch.Tensor | None = None, t: torch.Tensor | None = None,
                 identity: torch.Tensor | None = None) -> torch.Tensor:
        """[B, N, 3] posed meshes: ``R @ X_head + t`` with [B, 3, 3] ``R`` and [B, 3] ``t`` (None: head space)."""
        verts = self.head_space(weights, identity)
        if R is not None:
            verts = verts @ R.transpose(-1, -2)
        if t is not None:
            verts = verts + t[:, None, :]
        return verts
