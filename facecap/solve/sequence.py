"""Weights for a sequence of target meshes: read, optionally align the head, solve, make an Animation."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.config import field
from facecap.errors import FormatError, ShapeError
from facecap.geometry.rotations import rigid_procrustes
from facecap.rig.model import Rig
from facecap.rig.obj import load_obj
from facecap.rig.scale_check import check_mesh_scale
from facecap.solve.cd import CDConfig, CDResult, DeltaBasis, solve_cd

__all__ = ["SolveConfig", "load_target_meshes", "stable_vertices", "align_to_rig", "solve_mesh_sequence"]

log = logging.getLogger(__name__)


@dataclass
class SolveConfig:
    """Settings of ``facecap solve``."""

    cd: CDConfig = field(CDConfig(), "coordinate-descent solver (Rackovic et al. 2024 objective)")
    align: bool = field(False, "rigidly align each mesh to the rig's neutral first (meshes in world space); "
                               "off: meshes are already in head space")
    stable_fraction: float = field(0.25, "alignment uses this fraction of vertices that the rig's shapes move least")
    fps: float = field(30.0, "frame rate written into the animation")


def load_target_meshes(path: str | Path) -> np.ndarray:
    """[T, V, 3] float64 meshes from an npz with key "vertices" [T, V, 3], or a folder of OBJs (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.obj"))
        if not files:
            raise FormatError(f"{path}: no .obj files in the folder")
        meshes = [load_obj(f).vertices for f in files]
        odd = next((f for f, m in zip(files, meshes) if m.shape != meshes[0].shape), None)
        if odd is not None:
            raise FormatError(f"{odd}: {len(meshes[files.index(odd)])} vertices, but {files[0].name} has "
                              f"{len(meshes[0])}: the meshes must share the rig's topology")
        return np.stack(meshes)
    try:
        with np.load(path, allow_pickle=False) as data:
            verts = np.asarray(data["vertices"], dtype=np.float64)
    except (OSError, ValueError, KeyError, EOFError, TypeError, IndexError) as err:
        raise FormatError(f"{path}: expected an npz with key 'vertices' [T, V, 3] or a folder of OBJs ({err})") \
            from None
    if verts.ndim != 3 or verts.shape[-1] != 3:
        raise FormatError(f"{path}: 'vertices' must be [T, V, 3], got {list(verts.shape)}")
    return verts


def stable_vertices(rig: Rig, fraction: float) -> np.ndarray:
    """[N] indices of the ``fraction`` of vertices whose largest shape or corrective offset is smallest (skull)."""
    if not 0 < fraction <= 1:
        raise ShapeError(f"stable_fraction must lie in (0, 1], got {fraction}")
    offsets = np.concatenate([rig.shape_deltas, rig.corrective_deltas])
    motion = np.linalg.norm(offsets, axis=-1).max(axis=0) if len(offsets) else np.zeros(rig.num_vertices)
    count = max(3, int(round(fraction * rig.num_vertices)))
    return np.sort(np.argsort(motion, kind="stable")[:count])


def align_to_rig(meshes: np.ndarray, rig: Rig, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head-space meshes and head-to-world poses by rigid Procrustes on ``vertices`` (Umeyama 1991).

    Args:
        meshes: [T, V, 3] world-space meshes in the rig's units.
    Returns:
        head [T, V, 3] = R^T (X - t), R [T, 3, 3], t [T, 3] with X ≈ R X_head + t (docs/formats.md §4).
    """
    poses = [rigid_procrustes(rig.neutral[vertices], m[vertices]) for m in meshes]
    R = np.stack([p[0] for p in poses])
    t = np.stack([p[1] for p in poses])
    head = np.einsum("tji,tvj->tvi", R, meshes - t[:, None])
    return head, R, t


def solve_mesh_sequence(rig: Rig, meshes: np.ndarray, config: SolveConfig,
                        warm_start: np.ndarray | None = None) -> tuple[Animation, CDResult]:
    """Solve weights for meshes [T, V, 3] (the rig's vertex order and units) and wrap them as an Animation.

    Returns:
        The animation (weights, head pose: identity unless ``config.align``, units = the rig's) and the solver result.
    Raises:
        ShapeError / FormatError: no meshes, the wrong vertex count, non-finite coordinates.
        FacecapError: the meshes' size is a power of ten off the rig's (another unit; see
            :func:`facecap.rig.scale_check.check_mesh_scale`).
    """
    meshes = np.asarray(meshes, dtype=np.float64)
    if meshes.ndim != 3 or meshes.shape[1:] != (rig.num_vertices, 3):
        raise ShapeError(f"meshes must have shape [T, {rig.num_vertices}, 3] (the rig's vertices), "
                         f"got {list(meshes.shape)}")
    T = len(meshes)
    if T == 0:
        raise ShapeError("no meshes to solve (T = 0)")
    bad = ~np.isfinite(meshes).all(axis=(1, 2))
    if bad.any():
        raise FormatError(f"{int(bad.sum())} of the {T} meshes hold NaN or infinite coordinates (first: mesh "
                          f"{int(np.argmax(bad))})")
    check_mesh_scale(rig, meshes)
    if config.align:
        head, R, t = align_to_rig(meshes, rig, stable_vertices(rig, config.stable_fraction))
    else:
        head, R, t = meshes, np.broadcast_to(np.eye(3), (T, 3, 3)).copy(), np.zeros((T, 3))
    targets = (head - rig.neutral).reshape(T, -1)
    result = solve_cd(DeltaBasis.from_rig(rig), targets, config.cd, warm_start=warm_start)
    log.info("solved %d frames: J = %.6g after %d sweeps", T, result.objective, result.sweeps)
    anim = Animation(shape_names=rig.shape_names, weights=result.weights, R=R, t=t, fps=config.fps,
                     units=rig.units, extra={"generator": {"name": "facecap solve", "objective": result.objective,
                                                           "sweeps": result.sweeps}})
    return anim, result
