"""Wavefront OBJ meshes, and rigs as a folder of OBJs the way artists export them from Maya or Blender.

Folder layout read by :func:`import_obj_folder` and written by :func:`export_obj_folder`:

- ``neutral.obj``: the neutral; its UVs (``vt``) and ``usemtl`` materials become the rig's.
- ``<shape>.obj``: one file a blendshape, the full sculpt at weight 1, same topology as the neutral.
- ``<a>+<b>[+<c>[+<d>]].obj``: a corrective driven by the product of the named shapes' weights. The
  file is the full-combination sculpt (every named shape at 1). Its corrective delta is that sculpt
  minus the neutral, minus the linear deltas of the named shapes, minus the deltas of correctives
  on a proper subset of them, so evaluating the rig at those weights gives back the sculpt.
- ``landmarks.json`` (``{"scheme": "multipie68", "vertices": [ids]}``) or ``landmarks.txt`` (vertex
  ids, whitespace separated, ``#`` comments), optional; ids are 0-based vertex indices.

Polygons are fan-triangulated (corner 0 with each following edge), so quads stay counter-clockwise.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecap.errors import FormatError
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.units import UNITS_IN_MM

__all__ = ["ObjMesh", "load_obj", "save_obj", "import_obj_folder", "export_obj_folder", "NEUTRAL_NAME",
           "CORRECTIVE_SEPARATOR"]

log = logging.getLogger(__name__)

NEUTRAL_NAME = "neutral.obj"
CORRECTIVE_SEPARATOR = "+"
LANDMARK_FILES = ("landmarks.json", "landmarks.txt")
MAX_CORRECTIVE_KEYS = 4  # docs/formats.md §3: corrective_keys is [C, 4]
_FLOAT_FORMAT = "%.9g"  # round-trips float32 exactly
_FORBIDDEN_NAME_CHARS = set('/\\:*?"<>|')


@dataclass(frozen=True)
class ObjMesh:
    """A triangulated OBJ mesh.

    Attributes:
        vertices: [V, 3] float64 positions, in the file's units.
        faces: [F, 3] int32 0-based vertex indices.
        uv: [U, 2] float64 texture coordinates (v up), or None.
        uv_faces: [F, 3] int32 0-based uv indices, or None.
        face_material: [F] int16 index into ``material_names`` (from ``usemtl``), or None.
        material_names: M material names in order of first use.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    face_material: np.ndarray | None = None
    material_names: tuple[str, ...] = ()


def _floats(lines: list[str], width: int, path: Path, kind: str) -> np.ndarray:
    if not lines:
        return np.zeros((0, width))
    rows = [line.split()[1:width + 1] for line in lines]
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)
    except ValueError:
        raise FormatError(f"{path}: every '{kind}' line needs {width} numbers") from None


def _fan(corners: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """[N] corner indices of polygons with ``counts`` corners each -> [sum(counts - 2), 3] fan triangles."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_face = counts - 2
    first = np.repeat(starts, per_face)
    local = np.arange(per_face.sum()) - np.repeat(np.cumsum(per_face) - per_face, per_face) + 1
    return np.stack([corners[first], corners[first + local], corners[first + local + 1]], axis=1)


def load_obj(path: str | Path) -> ObjMesh:
    """Read an OBJ file: ``v``, ``vt``, ``f`` (``v``, ``v/vt``, ``v//vn``, ``v/vt/vn``; negative indices
    allowed) and ``usemtl``; polygons are fan-triangulated. Raises FormatError naming the file."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise FormatError(f"cannot read OBJ file {path}: {err}") from None
    v_lines, vt_lines, f_lines, f_pos, v_pos, vt_pos, mtl_pos, mtl_names = [], [], [], [], [], [], [], []
    for i, line in enumerate(lines):
        if line.startswith("v "):
            v_lines.append(line)
            v_pos.append(i)
        elif line.startswith("vt "):
            vt_lines.append(line)
            vt_pos.append(i)
        elif line.startswith("f "):
            f_lines.append(line[2:].replace("//", "/0/").replace("/", " "))
            f_pos.append(i)
        elif line.startswith("usemtl"):
            mtl_pos.append(i)
            mtl_names.append(line[6:].strip())
    vertices = _floats(v_lines, 3, path, "v")
    uv_all = _floats(vt_lines, 2, path, "vt")
    if not f_lines:
        raise FormatError(f"{path}: no faces ('f' lines)")
    fields = len(lines[f_pos[0]].split()[1].split("/"))
    tokens = [line.split() for line in f_lines]
    counts = np.array([len(t) for t in tokens]) // fields
    if (counts * fields != np.array([len(t) for t in tokens])).any() or (counts < 3).any():
        raise FormatError(f"{path}: every face needs 3 or more corners, all written as {fields} '/'-fields")
    try:
        ints = np.array([x for t in tokens for x in t], dtype=np.int64).reshape(-1, fields)
    except ValueError:
        raise FormatError(f"{path}: face indices must be integers") from None
    face_of_corner = np.repeat(np.arange(len(counts)), counts)

    def resolve(idx: np.ndarray, positions: list[int], size: int, kind: str) -> np.ndarray:
        # OBJ indices are 1-based; negative ones count back from the last element defined so far.
        before = np.searchsorted(np.asarray(positions), np.asarray(f_pos))[face_of_corner]
        out = np.where(idx < 0, before + idx, idx - 1)
        if out.size and (out.min() < 0 or out.max() >= size):
            raise FormatError(f"{path}: face {kind} index out of range (have {size})")
        return out.astype(np.int32)

    faces = _fan(resolve(ints[:, 0], v_pos, len(vertices), "vertex"), counts)
    uv = uv_faces = None
    if fields >= 2 and len(uv_all) and (ints[:, 1] != 0).all():
        uv, uv_faces = uv_all, _fan(resolve(ints[:, 1], vt_pos, len(uv_all), "uv"), counts)
    face_material, names = None, ()
    if mtl_pos:
        names = tuple(dict.fromkeys(mtl_names))
        which = np.searchsorted(np.asarray(mtl_pos), np.asarray(f_pos)) - 1
        ids = np.array([names.index(n) for n in mtl_names])
        per_poly = np.where(which >= 0, ids[np.maximum(which, 0)], -1)
        if (per_poly < 0).any():
            names = names + ("default",)
            per_poly[per_poly < 0] = len(names) - 1
        face_material = np.repeat(per_poly, counts - 2).astype(np.int16)
    return ObjMesh(vertices=vertices, faces=faces, uv=uv, uv_faces=uv_faces, face_material=face_material,
                   material_names=names)


def _rows(prefix: str, values: np.ndarray, fmt: str) -> str:
    if not len(values):
        return ""
    line = prefix + " " + " ".join([fmt] * values.shape[1])
    return "\n".join(line % tuple(row) for row in values.tolist()) + "\n"


def save_obj(mesh: ObjMesh, path: str | Path) -> Path:
    """Write ``mesh`` as OBJ (``v``, ``vt``, ``usemtl`` runs, ``f v/vt``), 1-based, 9 significant digits."""
    path = Path(path)
    parts = [_rows("v", mesh.vertices, _FLOAT_FORMAT)]
    corners = mesh.faces.astype(np.int64) + 1
    if mesh.uv is not None and mesh.uv_faces is not None:
        parts.append(_rows("vt", mesh.uv, _FLOAT_FORMAT))
        f_lines = [f"f {a}/{d} {b}/{e} {c}/{f}" for a, b, c, d, e, f in
                   np.concatenate([corners, mesh.uv_faces.astype(np.int64) + 1], axis=1).tolist()]
    else:
        f_lines = [f"f {a} {b} {c}" for a, b, c in corners.tolist()]
    if mesh.face_material is not None:
        changes = np.flatnonzero(np.diff(mesh.face_material, prepend=-1))
        for i in changes[::-1]:
            f_lines.insert(int(i), f"usemtl {mesh.material_names[mesh.face_material[i]]}")
    parts.append("\n".join(f_lines) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _read_landmarks(folder: Path, num_vertices: int, scheme: str) -> tuple[str, np.ndarray | None]:
    for name in LANDMARK_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                ids, scheme = data["vertices"], str(data.get("scheme", scheme))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise FormatError(f"{path}: expected {{\"scheme\": ..., \"vertices\": [ids]}} ({err})") from None
        else:
            ids = " ".join(line.split("#")[0] for line in path.read_text(encoding="utf-8").splitlines()).split()
        try:
            ids = np.array(ids, dtype=np.int64).reshape(-1)
        except ValueError:
            raise FormatError(f"{path}: landmark vertex ids must be integers") from None
        if ids.size and (ids.min() < 0 or ids.max() >= num_vertices):
            raise FormatError(f"{path}: landmark vertex ids must lie in [0, {num_vertices}), "
                              f"got [{ids.min()}, {ids.max()}]")
        return scheme, ids.astype(np.int32)
    return "", None


def _check_topology(mesh: ObjMesh, neutral: ObjMesh, path: Path) -> None:
    if mesh.vertices.shape != neutral.vertices.shape:
        raise FormatError(f"{path}: has {len(mesh.vertices)} vertices, the neutral has {len(neutral.vertices)}")
    if not np.array_equal(mesh.faces, neutral.faces):
        raise FormatError(f"{path}: face list differs from the neutral's (same topology and vertex order needed)")


def _corrective_deltas(sculpts: np.ndarray, keys: list[list[int]], deltas: np.ndarray) -> np.ndarray:
    """Corrective deltas from full-combination sculpts (offsets from neutral), lower orders first."""
    out = np.zeros_like(sculpts)
    for c in np.argsort([len(k) for k in keys], kind="stable"):
        out[c] = sculpts[c] - deltas[keys[c]].sum(axis=0)
        for d, other in enumerate(keys):
            if set(other) < set(keys[c]):
                out[c] -= out[d]
    return out


def import_obj_folder(folder: str | Path, neutral_name: str = NEUTRAL_NAME, units: str = "cm",
                      landmark_scheme: str = "multipie68") -> Rig:
    """Build a rig from a folder of OBJs (see the module docstring for the layout).

    Args:
        folder: the folder; every ``*.obj`` besides the neutral is a shape or a corrective.
        neutral_name: file name of the neutral.
        units: length unit the OBJs were exported in ("mm", "cm" or "m").
        landmark_scheme: scheme recorded for ``landmarks.txt`` (``landmarks.json`` names its own).
    Raises:
        FormatError naming the file on a missing neutral, a topology mismatch, or a corrective
        that names unknown shapes.
    """
    folder = Path(folder)
    if units not in UNITS_IN_MM:
        raise FormatError(f"units must be one of {', '.join(UNITS_IN_MM)}, got {units!r}")
    neutral_path = folder / neutral_name
    if not neutral_path.is_file():
        raise FormatError(f"{folder}: no neutral mesh {neutral_name!r}")
    neutral = load_obj(neutral_path)
    files = sorted(p for p in folder.glob("*.obj") if p.name != neutral_name)
    shape_files = [p for p in files if CORRECTIVE_SEPARATOR not in p.stem]
    corrective_files = [p for p in files if CORRECTIVE_SEPARATOR in p.stem]
    names = tuple(p.stem for p in shape_files)

    def offsets(paths: list[Path]) -> np.ndarray:
        out = np.zeros((len(paths), *neutral.vertices.shape))
        for i, p in enumerate(paths):
            mesh = load_obj(p)
            _check_topology(mesh, neutral, p)
            out[i] = mesh.vertices - neutral.vertices
        return out

    deltas = offsets(shape_files)
    keys = []
    for p in corrective_files:
        parts = p.stem.split(CORRECTIVE_SEPARATOR)
        unknown = [s for s in parts if s not in names]
        if unknown or not 2 <= len(set(parts)) == len(parts) <= MAX_CORRECTIVE_KEYS:
            raise FormatError(f"{p}: a corrective names 2 to {MAX_CORRECTIVE_KEYS} distinct shapes of the folder"
                              + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        keys.append([names.index(s) for s in parts])
    corrective = _corrective_deltas(offsets(corrective_files), keys, deltas)
    key_array = np.full((len(keys), MAX_CORRECTIVE_KEYS), -1, dtype=np.int32)
    for c, k in enumerate(keys):
        key_array[c, :len(k)] = k
    scheme, landmarks = _read_landmarks(folder, len(neutral.vertices), landmark_scheme)
    log.info("imported %s: %d vertices, %d shapes, %d correctives", folder, len(neutral.vertices), len(names),
             len(keys))
    return Rig(units=units, neutral=neutral.vertices, faces=neutral.faces, shape_names=names, shape_deltas=deltas,
               corrective_keys=key_array, corrective_deltas=corrective,
               identity_deltas=np.zeros((0, *neutral.vertices.shape)), uv=neutral.uv, uv_faces=neutral.uv_faces,
               face_material=neutral.face_material, material_names=neutral.material_names,
               landmark_scheme=scheme if landmarks is not None else "", landmark_vertices=landmarks)


def export_obj_folder(rig: Rig, folder: str | Path) -> dict[str, Path]:
    """Write ``rig`` as an OBJ folder that :func:`import_obj_folder` reads back (identity modes and
    texture are not written). Returns {name: path}; raises FormatError on a shape name unfit for a file."""
    folder = Path(folder)
    for name in rig.shape_names:
        if not name or CORRECTIVE_SEPARATOR in name or _FORBIDDEN_NAME_CHARS & set(name) or name == \
                Path(NEUTRAL_NAME).stem:
            raise FormatError(f"shape name {name!r} cannot be an OBJ file name in a rig folder")
    K = rig.num_shapes
    weights = np.concatenate([np.eye(K), np.zeros((rig.num_correctives, K))])
    for c, key in enumerate(rig.corrective_keys):
        weights[K + c, key[key >= 0]] = 1.0
    meshes = evaluate_rig(rig, weights) if len(weights) else np.zeros((0, rig.num_vertices, 3))
    names = list(rig.shape_names) + [CORRECTIVE_SEPARATOR.join(rig.shape_names[k] for k in key[key >= 0])
                                     for key in rig.corrective_keys]

    def mesh(vertices: np.ndarray) -> ObjMesh:
        return ObjMesh(vertices=vertices, faces=rig.faces, uv=rig.uv, uv_faces=rig.uv_faces,
                       face_material=rig.face_material, material_names=rig.material_names)

    paths = {"neutral": save_obj(mesh(rig.neutral), folder / NEUTRAL_NAME)}
    for name, vertices in zip(names, meshes):
        paths[name] = save_obj(mesh(vertices), folder / f"{name}.obj")
    if rig.landmark_vertices is not None:
        paths["landmarks"] = folder / LANDMARK_FILES[0]
        paths["landmarks"].write_text(json.dumps({"scheme": rig.landmark_scheme,
                                                  "vertices": rig.landmark_vertices.tolist()}) + "\n")
    log.info("wrote %d OBJ files to %s", len(paths), folder)
    return paths
