"""animation.glb: the performer's mesh, its morph targets and the take's animation as binary glTF 2.0.

The scene holds one node, ``head``, moving in the performer frame (or the world: ``export.head_frame``)
and carrying the mesh ``face``: the performer's neutral with one morph target per shape and corrective
(:class:`facecap.export.morph.MorphMesh`), named in ``mesh.extras.targetNames`` (the convention
Blender, three.js and Babylon.js read). One animation, ``performance``, has three channels sampled
at every frame of the take: the head's translation and rotation, and the morph weights, all
linear. Keys sit at ``frame / fps`` seconds, so a DCC at the take's frame rate shows take frame f
at its frame f. glTF's axes are the rig's own (y up, +z where the face looks, x to the
performer's left) and its unit is the metre. ``asset.extras`` records the fps, the start timecode,
the head frame and the rest pose, for tools that want them.

The file is written directly (a JSON chunk and a binary chunk, glTF 2.0 §4.4): the format is a
small, fixed set of tables here, which a library would only wrap.
"""

import json
import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from facecap import __version__
from facecap.animation import Animation
from facecap.checks import check_shape
from facecap.errors import FormatError
from facecap.export.morph import MorphMesh
from facecap.units import unit_scale

__all__ = ["write_glb", "read_glb", "head_quaternions"]

log = logging.getLogger(__name__)

_GLB_MAGIC, _GLB_VERSION = 0x46546C67, 2                 # "glTF", version 2
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942          # "JSON", "BIN\0"
_FLOAT, _UINT32 = 5126, 5125                              # accessor componentType
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963       # bufferView target
_TRIANGLES = 4
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4"}


class _Buffer:
    """The binary chunk being built, with its bufferViews and accessors."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, array: np.ndarray, target: int | None = None, bounds: bool = False) -> int:
        """Append [N, C] (or [N]) float32 / uint32 data as a bufferView and accessor; returns the accessor index."""
        array = np.ascontiguousarray(array)
        width = 1 if array.ndim == 1 else array.shape[1]
        data = array.tobytes()
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.size, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        padding = (-len(data)) % 4                        # every view starts 4-byte aligned
        self.parts += [data, b"\0" * padding]
        self.size += len(data) + padding
        accessor: dict[str, Any] = {"bufferView": len(self.views) - 1, "count": len(array), "type": _TYPES[width],
                                    "componentType": _UINT32 if array.dtype == np.uint32 else _FLOAT}
        if bounds:
            flat = array.reshape(len(array), width)
            accessor["min"], accessor["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def head_quaternions(R: np.ndarray) -> np.ndarray:
    """[T, 3, 3] rotations to [T, 4] unit quaternions (x, y, z, w), signs continuous over time.

    q and -q are the same rotation; flipping each to agree with the previous frame's makes linear
    interpolation between keys take the short way round.
    """
    q = Rotation.from_matrix(R).as_quat()
    flips = np.cumsum(np.concatenate([[0], (np.einsum("ti,ti->t", q[1:], q[:-1]) < 0).astype(int)])) % 2
    return q * np.where(flips, -1.0, 1.0)[:, None]


def write_glb(anim: Animation, mesh: MorphMesh, path: str | Path, extras: dict[str, Any] | None = None) -> Path:
    """Write animation.glb.

    Args:
        anim: the animation to deliver: [T, K] weights of ``mesh``'s shapes, the head pose in the frame to
            deliver (performer or world), lengths in ``anim.units``.
        mesh: the performer's mesh, in any length unit (converted to metres).
        extras: more keys for ``asset.extras`` (plain JSON data).
    """
    check_shape(anim.weights, f"T {mesh.num_shapes}", "anim.weights")
    to_m = unit_scale(mesh.units, "m")
    buffer = _Buffer()
    position = buffer.add((mesh.vertices * to_m).astype(np.float32), _ARRAY_BUFFER, bounds=True)
    indices = buffer.add(mesh.faces.astype(np.uint32).ravel(), _ELEMENT_ARRAY_BUFFER)
    targets = [{"POSITION": buffer.add((d * to_m).astype(np.float32), _ARRAY_BUFFER, bounds=True)}
               for d in mesh.deltas]
    times = buffer.add(anim.times.astype(np.float32), bounds=True)
    translation = (anim.t * unit_scale(anim.units, "m")).astype(np.float32)
    rotation = head_quaternions(anim.R).astype(np.float32)
    samplers = [{"input": times, "output": buffer.add(translation), "interpolation": "LINEAR"},
                {"input": times, "output": buffer.add(rotation), "interpolation": "LINEAR"},
                {"input": times, "output": buffer.add(mesh.target_weights(anim.weights).astype(np.float32).ravel()),
                 "interpolation": "LINEAR"}]
    head = 0
    document = {
        "asset": {"version": "2.0", "generator": f"facecap {__version__}",
                  "extras": {"fps": anim.fps, "start_timecode": anim.start_timecode,
                             "first_frame": int(anim.frame_numbers[0]),
                             "last_frame": int(anim.frame_numbers[-1]), **(extras or {})}},
        "scene": 0,
        "scenes": [{"name": "take", "nodes": [head]}],
        "nodes": [{"name": "head", "mesh": 0, "translation": translation[0].tolist(),
                   "rotation": rotation[0].tolist()}],
        "meshes": [{"name": "face", "weights": [0.0] * len(targets),
                    "primitives": [{"attributes": {"POSITION": position}, "indices": indices, "mode": _TRIANGLES,
                                    "targets": targets}],
                    "extras": {"targetNames": list(mesh.target_names)}}],
        "animations": [{"name": "performance", "samplers": samplers,
                        "channels": [{"sampler": i, "target": {"node": head, "path": p}}
                                     for i, p in enumerate(("translation", "rotation", "weights"))]}],
        "buffers": [{"byteLength": buffer.size}],
        "bufferViews": buffer.views,
        "accessors": buffer.accessors,
    }
    if not targets:                                       # glTF forbids empty target and weight lists
        del document["meshes"][0]["weights"], document["meshes"][0]["primitives"][0]["targets"]
        document["animations"][0]["channels"].pop()
        document["animations"][0]["samplers"].pop()
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    binary = b"".join(buffer.parts)
    length = 12 + 8 + len(text) + 8 + len(binary)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(struct.pack("<III", _GLB_MAGIC, _GLB_VERSION, length))
        f.write(struct.pack("<II", len(text), _CHUNK_JSON) + text)
        f.write(struct.pack("<II", len(binary), _CHUNK_BIN) + binary)
    log.info("wrote %s (%d vertices, %d morph targets, %d frames)", path, len(mesh.vertices), len(targets),
             anim.num_frames)
    return path


def read_glb(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """The JSON document and binary chunk of a .glb file (for tests and tools)."""
    data = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != _GLB_VERSION or length != len(data):
        raise FormatError(f"{path}: not a glTF 2.0 binary file")
    json_length, _ = struct.unpack_from("<II", data, 12)
    document = json.loads(data[20:20 + json_length])
    bin_length, _ = struct.unpack_from("<II", data, 20 + json_length)
    start = 28 + json_length
    return document, data[start:start + bin_length]
