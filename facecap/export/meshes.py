"""Head-stabilised mesh sequences: the performance with the head motion taken out (docs/formats.md §8)."""

import logging
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.checks import check_shape
from facecap.errors import ShapeError
from facecap.rig.obj import ObjMesh, save_obj

__all__ = ["stabilise_meshes", "write_mesh_sequence", "load_mesh_sequence"]

log = logging.getLogger(__name__)


def stabilise_meshes(world_verts: np.ndarray, anim: Animation) -> np.ndarray:
    """Head-space meshes ``X_head = R^T (X_world - t)`` per frame.

    Args:
        world_verts: [T, V, 3] world-space vertices, in ``anim.units``.
        anim: the animation whose head pose (R [T, 3, 3], t [T, 3]) placed them.
    Returns:
        [T, V, 3] float64 head-space vertices, in ``anim.units``.
    """
    X = np.asarray(world_verts, dtype=np.float64)
    check_shape(X, f"{anim.num_frames} V 3", "world_verts")
    # Row vectors: (R^T x)^T = x^T R.
    return np.einsum("tvi,tij->tvj", X - anim.t[:, None, :], anim.R)


def write_mesh_sequence(verts: np.ndarray, faces: np.ndarray, path_or_dir: str | Path, as_obj: bool = False,
                        units: str | None = None) -> Path:
    """Write a mesh sequence: one npz, or a folder of OBJs ``frame_000000.obj``, ... with ``as_obj``.

    Args:
        verts: [T, V, 3] vertices; stored as float32 in the npz ("vertices"), 9 digits in OBJs.
        faces: [F, 3] int triangles ("faces", int32).
        path_or_dir: the .npz file, or the folder for OBJs.
        units: length unit recorded in the npz as "units" when given.
    Returns:
        The npz path or the folder.
    """
    verts = np.asarray(verts)
    faces = np.asarray(faces)
    T = check_shape(verts, "T V 3", "verts")["T"]
    check_shape(faces, "F 3", "faces")
    if faces.size and (faces.min() < 0 or faces.max() >= verts.shape[1]):
        raise ShapeError(f"faces index vertices in [0, {verts.shape[1]}), got [{faces.min()}, {faces.max()}]")
    path = Path(path_or_dir)
    if as_obj:
        path.mkdir(parents=True, exist_ok=True)
        for i in range(T):
            save_obj(ObjMesh(vertices=verts[i], faces=faces), path / f"frame_{i:06d}.obj")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if units is None else {"units": np.array(units)}
        np.savez_compressed(path, vertices=verts.astype(np.float32), faces=faces.astype(np.int32), **extra)
    log.info("wrote %d meshes to %s", T, path)
    return path


def load_mesh_sequence(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an npz written by :func:`write_mesh_sequence`: ([T, V, 3] float64, [F, 3] int32)."""
    with np.load(path, allow_pickle=False) as data:
        return data["vertices"].astype(np.float64), data["faces"]
