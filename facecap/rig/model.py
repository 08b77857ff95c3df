"""The blendshape rig: a neutral mesh plus shape, corrective and identity offsets (docs/formats.md §3)."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from facecap.checks import check_shape
from facecap.errors import FormatError
from facecap.units import UNITS_IN_MM, unit_scale

__all__ = ["Rig", "FACE_MATERIAL"]

FACE_MATERIAL = "M_Face"  # the material of the face region in rigs that name one (ICT-FaceKit's)


@dataclass(frozen=True)
class Rig:
    """A facial rig in head space, with every array of the rig npz format.

    Geometry arrays are float64 so that CPU solvers keep their precision; the torch view
    (:func:`facecap.rig.evaluate.TorchRig`) casts to float32 on the GPU.

    Attributes:
        units: length unit of every geometric array, "mm", "cm" or "m".
        neutral: [V, 3] neutral mesh.
        faces: [F, 3] int32 triangles, counter-clockwise seen from outside.
        shape_names: K blendshape names.
        shape_deltas: [K, V, 3] offsets from neutral at weight 1.
        corrective_keys: [C, 4] int32 shape indices whose weight product drives corrective c;
            unused slots are -1.
        corrective_deltas: [C, V, 3] corrective offsets.
        identity_deltas: [I, V, 3] identity (PCA) offsets.
        uv, uv_faces: [U, 2] texture coordinates (v up) and [F, 3] their triangles, or None.
        face_material: [F] int16 material per triangle, or None; material_names: [M].
        material_opaque: [M] bool; False for see-through layers a renderer skips.
        landmark_scheme: e.g. "multipie68"; landmark_vertices: [L] int32 vertex per landmark.
        texture: [T, H, W, 3] uint8 albedo, one image per UV tile (row 0 is v = 1), or None.
    """

    units: str
    neutral: np.ndarray
    faces: np.ndarray
    shape_names: tuple[str, ...]
    shape_deltas: np.ndarray
    corrective_keys: np.ndarray
    corrective_deltas: np.ndarray
    identity_deltas: np.ndarray
    uv: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    face_material: np.ndarray | None = None
    material_names: tuple[str, ...] = ()
    material_opaque: np.ndarray | None = None
    landmark_scheme: str = ""
    landmark_vertices: np.ndarray | None = None
    texture: np.ndarray | None = None

    def __post_init__(self) -> None:
        validate_rig(self)

    @property
    def num_vertices(self) -> int:
        return self.neutral.shape[0]

    @property
    def num_shapes(self) -> int:
        return self.shape_deltas.shape[0]

    @property
    def num_correctives(self) -> int:
        return self.corrective_deltas.shape[0]

    @property
    def num_identities(self) -> int:
        return self.identity_deltas.shape[0]

    def shape_index(self, name: str) -> int:
        """Index of a shape by name; raises KeyError listing the names when absent."""
        try:
            return self.shape_names.index(name)
        except ValueError:
            raise KeyError(f"rig has no shape {name!r}; shapes: {', '.join(self.shape_names)}") from None

    def replace(self, **changes) -> "Rig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def in_units(self, units: str) -> "Rig":
        """The same rig with every length converted to ``units``."""
        s = unit_scale(self.units, units)
        if s == 1.0:
            return self
        return self.replace(units=units, neutral=self.neutral * s, shape_deltas=self.shape_deltas * s,
                            corrective_deltas=self.corrective_deltas * s,
                            identity_deltas=self.identity_deltas * s)

    def opaque_faces(self) -> np.ndarray:
        """[F'] indices of the triangles a renderer draws (see-through materials left out)."""
        if self.face_material is None or self.material_opaque is None:
            return np.arange(len(self.faces))
        return np.flatnonzero(self.material_opaque[self.face_material])

    def face_region_faces(self) -> np.ndarray:
        """[F'] indices of the face's triangles: those of the material ``FACE_MATERIAL``, else every opaque one."""
        if FACE_MATERIAL in self.material_names and self.face_material is not None:
            return np.flatnonzero(self.face_material == self.material_names.index(FACE_MATERIAL))
        return self.opaque_faces()

    def subset(self, vertices: np.ndarray) -> "Rig":
        """The rig restricted to ``vertices`` ([N] indices); triangles with all corners kept survive.

        Landmarks and UVs whose vertices are dropped are removed, so the result is a valid rig.
        """
        vertices = np.asarray(vertices, dtype=np.int64)
        remap = np.full(self.num_vertices, -1, dtype=np.int64)
        remap[vertices] = np.arange(len(vertices))
        keep = (remap[self.faces] >= 0).all(axis=1)
        landmarks = None
        if self.landmark_vertices is not None and (remap[self.landmark_vertices] >= 0).all():
            landmarks = remap[self.landmark_vertices].astype(np.int32)
        return Rig(
            units=self.units, neutral=self.neutral[vertices], faces=remap[self.faces[keep]].astype(np.int32),
            shape_names=self.shape_names, shape_deltas=self.shape_deltas[:, vertices],
            corrective_keys=self.corrective_keys, corrective_deltas=self.corrective_deltas[:, vertices],
            identity_deltas=self.identity_deltas[:, vertices],
            uv=self.uv, uv_faces=None if self.uv_faces is None else self.uv_faces[keep],
            face_material=None if self.face_material is None else self.face_material[keep],
            material_names=self.material_names, material_opaque=self.material_opaque,
            landmark_scheme=self.landmark_scheme if landmarks is not None else "",
            landmark_vertices=landmarks, texture=self.texture)


def _fail(key: str, problem: str) -> None:
    raise FormatError(f"rig key '{key}': {problem}")


def _check_array(value: np.ndarray, spec: str, key: str, kinds: str) -> dict[str, int]:
    if not isinstance(value, np.ndarray):
        _fail(key, f"expected a numpy array, got {type(value).__name__}")
    if value.dtype.kind not in kinds:
        _fail(key, f"expected dtype kind {kinds!r}, got {value.dtype}")
    try:
        dims = check_shape(value, spec, key)
    except ValueError as err:
        _fail(key, str(err))
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        _fail(key, f"{int((~np.isfinite(value)).sum())} entries are NaN or infinite")
    return dims


def _check_index(value: np.ndarray, upper: int, key: str, allow_minus_one: bool = False) -> None:
    low = -1 if allow_minus_one else 0
    if value.size and (value.min() < low or value.max() >= upper):
        _fail(key, f"indices must lie in [{low}, {upper}), got [{value.min()}, {value.max()}]")


def validate_rig(rig: Rig) -> None:
    """Check every array's shape, dtype, index range and finiteness; raise FormatError naming the key."""
    if rig.units not in UNITS_IN_MM:
        _fail("units", f"expected one of {', '.join(UNITS_IN_MM)}, got {rig.units!r}")
    V = _check_array(rig.neutral, "V 3", "neutral", "f")["V"]
    if V < 1:
        _fail("neutral", "the rig has no vertices")
    _check_array(rig.faces, "F 3", "faces", "iu")
    _check_index(rig.faces, V, "faces")
    K = _check_array(rig.shape_deltas, f"K {V} 3", "shape_deltas", "f")["K"]
    if len(rig.shape_names) != K:
        _fail("shape_names", f"has {len(rig.shape_names)} names for {K} shape_deltas")
    if len(set(rig.shape_names)) != K:
        _fail("shape_names", "names must be unique")
    C = _check_array(rig.corrective_keys, "C 4", "corrective_keys", "iu")["C"]
    _check_index(rig.corrective_keys, K, "corrective_keys", allow_minus_one=True)
    if C and ((rig.corrective_keys >= 0).sum(axis=1) < 2).any():
        _fail("corrective_keys", "each corrective needs 2 to 4 driving shapes")
    _check_array(rig.corrective_deltas, f"{C} {V} 3", "corrective_deltas", "f")
    _check_array(rig.identity_deltas, f"I {V} 3", "identity_deltas", "f")
    F = rig.faces.shape[0]
    if (rig.uv is None) != (rig.uv_faces is None):
        _fail("uv_faces" if rig.uv_faces is None else "uv", "uv and uv_faces come together")
    if rig.uv is not None:
        U = _check_array(rig.uv, "U 2", "uv", "f")["U"]
        _check_array(rig.uv_faces, f"{F} 3", "uv_faces", "iu")
        _check_index(rig.uv_faces, U, "uv_faces")
    if rig.face_material is not None:
        _check_array(rig.face_material, f"{F}", "face_material", "iu")
        _check_index(rig.face_material, len(rig.material_names), "face_material")
    if rig.material_opaque is not None:
        _check_array(rig.material_opaque, f"{len(rig.material_names)}", "material_opaque", "b")
    if rig.landmark_vertices is not None:
        _check_array(rig.landmark_vertices, "L", "landmark_vertices", "iu")
        _check_index(rig.landmark_vertices, V, "landmark_vertices")
    if rig.texture is not None:
        _check_array(rig.texture, "T H W 3", "texture", "u")
