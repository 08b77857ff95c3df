"""Head-stabilised mesh sequences: the performance with the head motion taken out (docs/formats.md §8)."""

import io
import logging
import zipfile
from collections.abc import Iterable
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


def write_mesh_sequence(verts: np.ndarray | Iterable[np.ndarray], faces: np.ndarray, path_or_dir: str | Path,
                        as_obj: bool = False, units: str | None = None, num_frames: int | None = None) -> Path:
    """Write a mesh sequence: one npz, or a folder of OBJs ``frame_000000.obj``, ... with ``as_obj``.

    Args:
        verts: [T, V, 3] vertices, or an iterable of chunks [t, V, 3] of consecutive frames with
            ``num_frames`` = T, written as they come so that a long sequence never sits in memory whole;
            stored as float32 in the npz ("vertices"), 9 digits in OBJs.
        faces: [F, 3] int triangles ("faces", int32).
        path_or_dir: the .npz file, or the folder for OBJs.
        units: length unit recorded in the npz as "units" when given.
    Returns:
        The npz path or the folder.
    """
    faces = np.asarray(faces)
    check_shape(faces, "F 3", "faces")
    if isinstance(verts, np.ndarray):
        verts, num_frames = [verts], len(verts)
    elif num_frames is None:
        raise ValueError("write_mesh_sequence: chunks of vertices need num_frames")
    path = Path(path_or_dir)
    written = 0
    if as_obj:
        path.mkdir(parents=True, exist_ok=True)
        for chunk in verts:
            _check_chunk(chunk, faces)
            for v in chunk:
                save_obj(ObjMesh(vertices=v, faces=faces), path / f"frame_{written:06d}.obj")
                written += 1
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            with zf.open("vertices.npy", "w", force_zip64=True) as member:
                for chunk in verts:
                    _check_chunk(chunk, faces)
                    if not written:          # np.load reads the member as one [T, V, 3] float32 array
                        header = {"descr": "<f4", "fortran_order": False, "shape": (num_frames, *chunk.shape[1:])}
                        np.lib.format.write_array_header_2_0(member, header)
                    member.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
                    written += len(chunk)
            zf.writestr("faces.npy", _npy_bytes(faces.astype(np.int32)))
            if units is not None:
                zf.writestr("units.npy", _npy_bytes(np.array(units)))
    if written != num_frames:
        raise ShapeError(f"write_mesh_sequence: {written} frames of vertices for num_frames = {num_frames}")
    log.info("wrote %d meshes to %s", written, path)
    return path


def _check_chunk(chunk: np.ndarray, faces: np.ndarray) -> None:
    check_shape(chunk, "T V 3", "verts")
    if faces.size and (faces.min() < 0 or faces.max() >= chunk.shape[1]):
        raise ShapeError(f"faces index vertices in [0, {chunk.shape[1]}), got [{faces.min()}, {faces.max()}]")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_mesh_sequence(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an npz written by :func:`write_mesh_sequence`: ([T, V, 3] float64, [F, 3] int32)."""
    with np.load(path, allow_pickle=False) as data:
        return data["vertices"].astype(np.float64), data["faces"]
