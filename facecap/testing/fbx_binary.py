"""A reader of binary FBX files, enough to check what facecap's animation.fbx tells Maya, MotionBuilder or Unreal.

The binary format (FBX 7.x) is a tree of records: end offset, property count, property list length,
a name, typed properties (``Y C I F D L`` scalars, ``f d l i b`` arrays, zlib-compressed or not,
``S R`` strings and raw bytes), then nested records closed by an empty one. Offsets are 32-bit before
version 7500, 64-bit from it. :func:`read_fbx` gives the tree; :class:`FbxScene` the global settings,
objects, connections and animation curves that the checks need.
"""

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FbxNode", "FbxScene", "read_fbx", "KTIME_PER_SECOND"]

KTIME_PER_SECOND = 46186158000           # FBX time unit: ticks a second
_MAGIC = b"Kaydara FBX Binary  \x00"
_HEADER = 27                              # magic, 2 bytes, uint32 version
_SCALARS = {"Y": "<h", "C": "<?", "I": "<i", "F": "<f", "D": "<d", "L": "<q"}
_ARRAYS = {"f": "<f4", "d": "<f8", "l": "<i8", "i": "<i4", "b": "?"}


@dataclass
class FbxNode:
    name: str
    props: list
    children: list["FbxNode"] = field(default_factory=list)

    def find(self, name: str) -> list["FbxNode"]:
        """Every descendant record called ``name``, depth first."""
        found = []
        for child in self.children:
            if child.name == name:
                found.append(child)
            found += child.find(name)
        return found

    def properties70(self) -> dict[str, list]:
        """The ``Properties70`` block's ``P`` records: name -> values."""
        return {p.props[0].decode(): p.props[4:] for p in self.find("P")}


def read_fbx(path: str | Path) -> tuple[int, FbxNode]:
    """(version, a root node whose children are the file's top-level records)."""
    data = Path(path).read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path}: not a binary FBX file")
    version = struct.unpack_from("<I", data, 23)[0]
    head = "<QQQ" if version >= 7500 else "<III"
    head_size = struct.calcsize(head)

    def record(pos: int) -> tuple[FbxNode | None, int]:
        end, count, _ = struct.unpack_from(head, data, pos)
        length = data[pos + head_size]
        if end == 0:
            return None, pos + head_size + 1
        pos += head_size + 1
        node = FbxNode(data[pos:pos + length].decode(errors="replace"), [])
        pos += length
        for _ in range(count):
            kind = chr(data[pos])
            pos += 1
            if kind in _SCALARS:
                node.props.append(struct.unpack_from(_SCALARS[kind], data, pos)[0])
                pos += struct.calcsize(_SCALARS[kind])
            elif kind in _ARRAYS:
                _, encoding, size = struct.unpack_from("<III", data, pos)
                raw = data[pos + 12:pos + 12 + size]
                node.props.append(np.frombuffer(zlib.decompress(raw) if encoding else raw, dtype=_ARRAYS[kind]))
                pos += 12 + size
            else:                                                   # S, R
                size = struct.unpack_from("<I", data, pos)[0]
                node.props.append(data[pos + 4:pos + 4 + size])
                pos += 4 + size
        while pos < end:
            child, pos = record(pos)
            if child is None:
                break
            node.children.append(child)
        return node, end

    root, pos = FbxNode("", []), _HEADER
    while True:
        node, pos = record(pos)
        if node is None:
            return version, root
        root.children.append(node)


@dataclass
class FbxScene:
    """The parts of an FBX file the checks read.

    Attributes:
        settings: GlobalSettings' properties (UnitScaleFactor, UpAxis, TimeMode, CustomFrameRate, ...).
        objects: id -> (class, name, record) of every object.
        links: (child id, parent id, property name or "") connections.
    """

    settings: dict[str, list]
    objects: dict[int, tuple[str, str, FbxNode]]
    links: list[tuple[int, int, str]]

    @classmethod
    def read(cls, path: str | Path) -> "FbxScene":
        _, root = read_fbx(path)
        settings = root.find("GlobalSettings")[0].properties70()
        objects = {}
        for node in root.find("Objects")[0].children:
            name, _, kind = node.props[1].partition(b"\x00\x01")
            objects[node.props[0]] = (kind.decode(), name.decode(), node)
        links = [(c.props[1], c.props[2], c.props[3].decode() if len(c.props) > 3 else "")
                 for c in root.find("Connections")[0].children]
        return cls(settings, objects, links)

    def named(self, kind: str, name: str) -> int:
        """The id of the object of class ``kind`` called ``name``."""
        return next(i for i, (k, n, _) in self.objects.items() if k == kind and n == name)

    def curves(self, target: int, prop: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The animation curves of ``target``'s property ``prop`` (e.g. "Lcl Translation", "DeformPercent"):
        channel ("X", "Y", "Z" or the property) -> (key times in seconds, values)."""
        nodes = [c for c, p, name in self.links if p == target and name == prop]
        out = {}
        for node in nodes:
            for curve, parent, channel in self.links:
                if parent == node and channel.startswith("d|"):
                    record = self.objects[curve][2]
                    times = record.find("KeyTime")[0].props[0] / KTIME_PER_SECOND
                    out[channel[2:]] = (times, record.find("KeyValueFloat")[0].props[0].astype(np.float64))
        return out
