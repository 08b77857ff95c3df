"""Read and write the rig npz format (docs/formats.md §3)."""

import logging
import zipfile
from pathlib import Path

import numpy as np

from facecap.errors import FormatError
from facecap.rig.model import Rig

__all__ = ["load_rig", "save_rig"]

log = logging.getLogger(__name__)

RIG_FORMAT = "facecap-rig"
RIG_VERSION = 1
_REQUIRED = ("format", "version", "units", "neutral", "faces", "shape_names", "shape_deltas")


def _str(data: np.lib.npyio.NpzFile, key: str, default: str = "") -> str:
    if key not in data.files:
        return default
    value = data[key]
    if value.ndim != 0:
        raise FormatError(f"rig key '{key}': expected a scalar string, got an array of shape {list(value.shape)}")
    return str(value)


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig npz; a broken file raises FormatError naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"rig file not found: {path}")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: the rig file is empty")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise FormatError(f"{path}: not a readable npz file ({err})") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise FormatError(f"{path}: a single .npy array, not a rig npz of named arrays (FORMATS.md §3)")
    try:
        return _rig_from_npz(data, path)
    except FormatError as err:
        raise err if str(err).startswith(str(path)) else FormatError(f"{path}: {err}") from err
    except (ValueError, TypeError, KeyError, IndexError, OSError, zipfile.BadZipFile) as err:
        raise FormatError(f"{path}: a rig key does not read as FORMATS.md §3 says ({err})") from err
    finally:
        data.close()


def _rig_from_npz(data: np.lib.npyio.NpzFile, path: Path) -> Rig:
    """The rig of an open npz, checked key by key."""
    missing = [k for k in _REQUIRED if k not in data.files]
    if missing:
        raise FormatError(f"{path}: rig key '{missing[0]}' is missing (required: {', '.join(_REQUIRED)})")
    if _str(data, "format") != RIG_FORMAT:
        raise FormatError(f"{path}: rig key 'format' must be {RIG_FORMAT!r}, got {_str(data, 'format')!r}")
    if int(data["version"]) != RIG_VERSION:
        raise FormatError(f"{path}: rig key 'version' must be {RIG_VERSION}, got {int(data['version'])}")

    def geometry(key: str) -> np.ndarray:
        value = data[key]
        if value.dtype.kind != "f":
            raise FormatError(f"{path}: rig key '{key}': expected floats, got {value.dtype}")
        return value.astype(np.float64)

    def optional(key: str) -> np.ndarray | None:
        return data[key] if key in data.files else None

    neutral = geometry("neutral")
    V = neutral.shape[0]
    has_correctives = "corrective_deltas" in data.files
    if has_correctives != ("corrective_keys" in data.files):
        raise FormatError(f"{path}: rig keys 'corrective_keys' and 'corrective_deltas' come together")
    texture = optional("texture")
    if texture is not None and texture.ndim == 3:
        texture = texture[None]
    try:
        return Rig(
            units=_str(data, "units"),
            neutral=neutral,
            faces=data["faces"],
            shape_names=tuple(str(s) for s in data["shape_names"]),
            shape_deltas=geometry("shape_deltas"),
            corrective_keys=data["corrective_keys"] if has_correctives else np.zeros((0, 4), np.int32),
            corrective_deltas=geometry("corrective_deltas") if has_correctives else np.zeros((0, V, 3)),
            identity_deltas=geometry("identity_deltas") if "identity_deltas" in data.files
            else np.zeros((0, V, 3)),
            uv=optional("uv"),
            uv_faces=optional("uv_faces"),
            face_material=optional("face_material"),
            material_names=tuple(str(s) for s in data["material_names"]) if "material_names" in data.files
            else (),
            material_opaque=optional("material_opaque"),
            landmark_scheme=_str(data, "landmark_scheme"),
            landmark_vertices=optional("landmark_vertices"),
            texture=texture,
        )
    except FormatError as err:
        raise FormatError(f"{path}: {err}") from err


def save_rig(rig: Rig, path: str | Path) -> None:
    """Write ``rig`` as a rig npz (geometry as float32); the file loads back equal to float32 precision."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(RIG_FORMAT), "version": np.array(RIG_VERSION), "units": np.array(rig.units),
        "neutral": rig.neutral.astype(np.float32), "faces": rig.faces.astype(np.int32),
        "shape_names": np.array(rig.shape_names, dtype=str), "shape_deltas": rig.shape_deltas.astype(np.float32),
    }
    if rig.num_correctives:
        arrays["corrective_keys"] = rig.corrective_keys.astype(np.int32)
        arrays["corrective_deltas"] = rig.corrective_deltas.astype(np.float32)
    if rig.num_identities:
        arrays["identity_deltas"] = rig.identity_deltas.astype(np.float32)
    if rig.uv is not None:
        arrays["uv"] = rig.uv.astype(np.float32)
        arrays["uv_faces"] = rig.uv_faces.astype(np.int32)
    if rig.face_material is not None:
        arrays["face_material"] = rig.face_material.astype(np.int16)
    if rig.material_names:
        arrays["material_names"] = np.array(rig.material_names, dtype=str)
    if rig.material_opaque is not None:
        arrays["material_opaque"] = rig.material_opaque.astype(bool)
    if rig.landmark_vertices is not None:
        arrays["landmark_scheme"] = np.array(rig.landmark_scheme)
        arrays["landmark_vertices"] = rig.landmark_vertices.astype(np.int32)
    if rig.texture is not None:
        arrays["texture"] = rig.texture[0] if rig.texture.shape[0] == 1 else rig.texture
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")     # published whole or not at all
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    log.info("wrote rig %s (%d vertices, %d shapes)", path, rig.num_vertices, rig.num_shapes)
