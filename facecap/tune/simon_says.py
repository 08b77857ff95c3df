"""Simon-Says expression sets: intended controls c_k with the performer's meshes v_k (Omens et al. 2025, section 8).

File formats (both hold absolute head-space meshes in the rig's units, vertex order of the rig):

- ``expressions.npz``: ``controls`` [N, K] float, ``meshes`` [N, V, 3] float, ``shape_names`` [K] str
  (the columns of ``controls``; matched to the rig by name), optional ``names`` [N] str and
  ``holdout`` [N] bool (expressions kept out of the tuning, only reported).
- a folder with ``expressions.json``:
  ``{"shape_names": [...], "expressions": [{"name": "smile", "mesh": "smile.obj",
  "controls": {"mouthSmile_L": 0.8, ...}, "holdout": false}, ...]}`` and one OBJ per expression
  (only its ``v`` lines are read).

:func:`make_simon_says` builds an example from a rig: a fixed list of sparse, plausible
expressions, posed on a *performer* rig whose shapes differ from the animation rig's by

    δ'_i = g_i δ_i + Σ_{j ∈ X_i} m_ij δ_j + a · ρ_i(x) · |δ_i(x)| / max|δ_i|

with a gain g_i ~ 1 + N(0, gain_sigma²) (range of motion), cross-talk m_ij ~ U(0, crosstalk) into
the ``crosstalk_shapes`` shapes most overlapping shape i (the performer's smile also squints), and
a smooth random field ρ_i (a sum of Gaussian bumps of radius ``field_radius``, unit peak, scaled
by ``field_amplitude`` times the shape's largest offset) confined to the shape's region. All draws
come from ``numpy.random.default_rng(seed)``.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecap.checks import check_shape
from facecap.config import field
from facecap.errors import FormatError
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig

__all__ = ["ExpressionSet", "PerformerConfig", "SIMON_SAYS", "load_expressions", "save_expressions",
           "make_simon_says", "performer_rig"]

# (name, {shape: weight}, held out). ARKit/ICT names; shapes a rig lacks are skipped.
SIMON_SAYS: tuple[tuple[str, dict[str, float], bool], ...] = (
    ("jaw_open", {"jawOpen": 0.7}, False),
    ("smile", {"mouthSmile_L": 0.8, "mouthSmile_R": 0.8}, False),
    ("blink", {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0}, False),
    ("brow_raise", {"browInnerUp_L": 0.8, "browInnerUp_R": 0.8, "browOuterUp_L": 0.8, "browOuterUp_R": 0.8},
     False),
    ("brow_down", {"browDown_L": 0.8, "browDown_R": 0.8}, False),
    ("pucker", {"mouthPucker": 0.8}, False),
    ("funnel", {"mouthFunnel": 0.7}, False),
    ("frown", {"mouthFrown_L": 0.7, "mouthFrown_R": 0.7}, False),
    ("cheek_puff", {"cheekPuff_L": 0.7, "cheekPuff_R": 0.7}, False),
    ("sneer", {"noseSneer_L": 0.7, "noseSneer_R": 0.7}, False),
    ("mouth_left", {"mouthLeft": 0.7}, False),
    ("mouth_right", {"mouthRight": 0.7}, False),
    ("stretch", {"mouthStretch_L": 0.6, "mouthStretch_R": 0.6}, False),
    ("upper_lip_up", {"mouthUpperUp_L": 0.6, "mouthUpperUp_R": 0.6}, False),
    ("eyes_wide", {"eyeWide_L": 0.8, "eyeWide_R": 0.8}, False),
    ("happy_talking", {"mouthSmile_L": 0.6, "mouthSmile_R": 0.6, "jawOpen": 0.4}, True),
    ("surprise", {"browInnerUp_L": 0.6, "browInnerUp_R": 0.6, "browOuterUp_L": 0.6, "browOuterUp_R": 0.6,
                  "eyeWide_L": 0.5, "eyeWide_R": 0.5, "jawOpen": 0.5}, True),
    ("smirk_squint", {"mouthSmile_L": 0.7, "eyeBlink_L": 0.5}, True),
    ("oo_talking", {"mouthPucker": 0.5, "jawOpen": 0.3}, True),
    ("disgust", {"noseSneer_L": 0.5, "noseSneer_R": 0.5, "mouthUpperUp_L": 0.4, "mouthUpperUp_R": 0.4,
                 "browDown_L": 0.4, "browDown_R": 0.4}, True),
)


@dataclass(frozen=True)
class ExpressionSet:
    """Intended controls and the performer's meshes.

    Attributes:
        shape_names: K control names (columns of ``controls``).
        controls: [N, K] float64 intended controls c_k.
        meshes: [N, V, 3] float64 head-space meshes v_k, rig units.
        names: N expression names. holdout: [N] bool, True for expressions kept out of tuning.
    """

    shape_names: tuple[str, ...]
    controls: np.ndarray
    meshes: np.ndarray
    names: tuple[str, ...]
    holdout: np.ndarray

    def __post_init__(self) -> None:
        N = check_shape(self.controls, f"N {len(self.shape_names)}", "controls")["N"]
        check_shape(self.meshes, f"{N} V 3", "meshes")
        if len(self.names) != N or len(self.holdout) != N:
            raise FormatError(f"expression set: {N} expressions but {len(self.names)} names and "
                              f"{len(self.holdout)} holdout flags")

    def for_rig(self, rig: Rig) -> "ExpressionSet":
        """The set with its control columns in the rig's shape order (missing names raise FormatError)."""
        missing = [s for s in self.shape_names if s not in rig.shape_names]
        if missing:
            raise FormatError(f"expression controls name shapes the rig lacks: {', '.join(missing[:5])}")
        if self.meshes.shape[1] != rig.num_vertices:
            raise FormatError(f"expression meshes have {self.meshes.shape[1]} vertices, the rig "
                              f"{rig.num_vertices}")
        controls = np.zeros((len(self.names), rig.num_shapes))
        controls[:, [rig.shape_index(s) for s in self.shape_names]] = self.controls
        return ExpressionSet(rig.shape_names, controls, self.meshes, self.names, self.holdout)


def save_expressions(expressions: ExpressionSet, path: str | Path) -> None:
    """Write the npz format (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, controls=expressions.controls, meshes=expressions.meshes,
                        shape_names=np.array(expressions.shape_names, dtype=str),
                        names=np.array(expressions.names, dtype=str), holdout=expressions.holdout)


def _read_obj_vertices(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FormatError(f"expression mesh not found: {path}")
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    try:
        return np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    except ValueError as err:
        raise FormatError(f"{path}: bad 'v' line ({err})") from err


def _load_folder(folder: Path) -> ExpressionSet:
    spec_path = folder / "expressions.json"
    if not spec_path.is_file():
        raise FormatError(f"{folder}: no expressions.json (see facecap.tune.simon_says for the format)")
    try:
        spec = json.loads(spec_path.read_text())
        names = tuple(spec["shape_names"])
        entries = spec["expressions"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise FormatError(f"{spec_path}: needs 'shape_names' and 'expressions' ({err})") from err
    controls = np.zeros((len(entries), len(names)))
    meshes = []
    for k, entry in enumerate(entries):
        for shape, value in entry.get("controls", {}).items():
            if shape not in names:
                raise FormatError(f"{spec_path}: expression {k} uses unknown control {shape!r}")
            controls[k, names.index(shape)] = float(value)
        meshes.append(_read_obj_vertices(folder / entry["mesh"]))
    if len({m.shape for m in meshes}) > 1:
        raise FormatError(f"{folder}: the OBJ files have different vertex counts")
    return ExpressionSet(names, controls, np.stack(meshes), tuple(e.get("name", f"expr{k}") for k, e in
                                                                  enumerate(entries)),
                         np.array([bool(e.get("holdout", False)) for e in entries]))


def load_expressions(path: str | Path) -> ExpressionSet:
    """Read an expressions npz or folder (module docstring); bad files raise FormatError."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    if not path.is_file():
        raise FormatError(f"expressions file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise FormatError(f"{path}: not a readable npz ({err})") from err
    with data:
        for key in ("controls", "meshes", "shape_names"):
            if key not in data.files:
                raise FormatError(f"{path}: expressions key '{key}' is missing")
        N = data["controls"].shape[0]
        names = tuple(str(s) for s in data["names"]) if "names" in data.files else tuple(
            f"expr{k}" for k in range(N))
        holdout = data["holdout"].astype(bool) if "holdout" in data.files else np.zeros(N, dtype=bool)
        try:
            return ExpressionSet(tuple(str(s) for s in data["shape_names"]),
                                 data["controls"].astype(np.float64), data["meshes"].astype(np.float64),
                                 names, holdout)
        except FormatError as err:
            raise FormatError(f"{path}: {err}") from err


@dataclass
class PerformerConfig:
    """The perturbation that turns the animation rig into the synthetic performer's rig."""

    gain_sigma: float = field(0.1, "std of each shape's gain g_i around 1 (range of motion)")
    crosstalk: float = field(0.3, "largest cross-talk weight m_ij into overlapping shapes")
    crosstalk_shapes: int = field(2, "shapes each shape leaks into (the most overlapping ones)")
    field_amplitude: float = field(0.1, "smooth field peak, relative to the shape's largest offset")
    field_radius: float = field(2.0, "radius of the field's Gaussian bumps, rig units (cm for ICT)")
    field_bumps: int = field(8, "Gaussian bumps per shape's field")
    seed: int = field(0, "random seed")


def performer_rig(rig: Rig, config: PerformerConfig) -> Rig:
    """The animation rig with each shape perturbed as in the module docstring."""
    rng = np.random.default_rng(config.seed)
    D = rig.shape_deltas
    K = rig.num_shapes
    length = np.linalg.norm(D, axis=2)                                        # [K, V]
    peak = length.max(axis=1)
    weight = length / np.maximum(peak[:, None], 1e-12)                        # [K, V] region of each shape
    overlap = weight @ weight.T
    np.fill_diagonal(overlap, -np.inf)
    gains = 1.0 + config.gain_sigma * rng.standard_normal(K)
    mixing = np.zeros((K, K))
    for i in range(K):
        partners = np.argsort(-overlap[i])[: config.crosstalk_shapes]
        mixing[i, partners] = rng.uniform(0.0, config.crosstalk, len(partners))
    out = gains[:, None, None] * D + np.einsum("ij,jvd->ivd", mixing, D)
    for i in range(K):
        centres = rig.neutral[rng.choice(np.flatnonzero(weight[i] > 0.5), config.field_bumps)]
        dist2 = ((rig.neutral[:, None] - centres[None]) ** 2).sum(-1)         # [V, B]
        bumps = np.exp(-dist2 / (2 * config.field_radius ** 2)) @ rng.standard_normal((config.field_bumps, 3))
        bumps /= max(np.abs(bumps).max(), 1e-12)
        out[i] += config.field_amplitude * peak[i] * weight[i][:, None] * bumps
    return rig.replace(shape_deltas=out)


def make_simon_says(rig: Rig, config: PerformerConfig | None = None) -> tuple[ExpressionSet, Rig]:
    """The :data:`SIMON_SAYS` expressions posed on a perturbed performer rig; returns (set, performer rig)."""
    config = config or PerformerConfig()
    performer = performer_rig(rig, config)
    kept = [(n, {s: w for s, w in c.items() if s in rig.shape_names}, h) for n, c, h in SIMON_SAYS]
    kept = [e for e in kept if e[1]]
    if not kept:
        raise FormatError("the rig has none of the Simon-Says shapes (ARKit/ICT names)")
    controls = np.zeros((len(kept), rig.num_shapes))
    for k, (_, weights, _) in enumerate(kept):
        for shape, value in weights.items():
            controls[k, rig.shape_index(shape)] = value
    meshes = evaluate_rig(performer, controls)
    return ExpressionSet(rig.shape_names, controls, meshes, tuple(e[0] for e in kept),
                         np.array([e[2] for e in kept])), performer
