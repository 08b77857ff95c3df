"""Rendered training scenes, generated once and cached on disk in chunks.

Each scene is drawn by :mod:`facecap.learn.scenes` (expression, identity, head pose, cameras), painted by
:mod:`facecap.learn.albedo`, lit by :func:`facecap.synth.random_lighting` and rendered through one *canvas*
camera per view: the crop camera of the rig landmarks' box (:mod:`facecap.learn.crops`), widened by
``canvas_factor`` so that training can shift and scale the crop inside it. A canvas holds premultiplied
colour and coverage (RGBA, 8 bits), so that every batch can put a new background, camera gains and noise
under and over the face. Chunks are written whole (a rerun resumes after the last one) and keyed by the
rig and the settings, so a changed rig or config never reads stale scenes.
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facecap.camera.torch_camera import CameraTensors
from facecap.config import config_to_dict
from facecap.errors import FormatError
from facecap.learn.albedo import AlbedoRegions, random_albedo
from facecap.learn.config import DataConfig, ModelConfig
from facecap.learn.crops import CropCameras, crop_cameras, landmark_box
from facecap.learn.scenes import partner_shapes, random_scene_geometry, random_weights
from facecap.progress import progress
from facecap.render.ops import make_context
from facecap.render.renderer import render_attribute
from facecap.render.shading import sh_irradiance, vertex_normals
from facecap.rig.evaluate import TorchRig
from facecap.rig.model import Rig
from facecap.synth.take import random_lighting

__all__ = ["SceneRenderer", "SceneSet", "generate_scenes", "scene_folder", "rig_fingerprint"]

log = logging.getLogger(__name__)

# A stand-in pinhole camera for the boxes of generated views: only rays matter, so any focal length does.
_BOX_FOCAL = 1000.0
_VALIDATION_STREAM = 1 << 20       # seed offset of the validation chunks' random streams
GREY_LEVELS = 255.0


def rig_fingerprint(rig: Rig) -> str:
    """A short hash of everything about a rig that changes its renders."""
    digest = hashlib.sha256()
    for array in (rig.neutral, rig.faces, rig.shape_deltas, rig.corrective_keys, rig.corrective_deltas,
                  rig.identity_deltas, rig.landmark_vertices, rig.face_material):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([rig.units, list(rig.shape_names), list(rig.material_names)]).encode())
    return digest.hexdigest()[:16]


def _scene_settings(rig: Rig, data: DataConfig, model: ModelConfig) -> dict:
    """What the scenes depend on: the rig, the crop's margin, and the data settings except how many there are
    (chunk i holds the same scenes whatever the count, so a larger set extends a smaller one)."""
    settings = config_to_dict(data)
    del settings["samples"], settings["validation"]
    return {"rig": rig_fingerprint(rig), "data": settings, "margin": model.margin}


def scene_folder(root: Path, rig: Rig, data: DataConfig, model: ModelConfig) -> Path:
    """The cache folder of these scenes under ``root``, keyed by :func:`_scene_settings`."""
    key = json.dumps(_scene_settings(rig, data, model), sort_keys=True)
    return Path(root) / f"scenes_{hashlib.sha256(key.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Scenes:
    """n rendered scenes of V views each (lengths in mm).

    Attributes:
        canvas: [n, V, Sc, Sc, 4] uint8 premultiplied RGB and coverage.
        canvas_R: [n, V, 3, 3] world-to-canvas rotations; canvas_centre: [n, V, 3]; canvas_focal: [n, V] px
            (principal point at the canvas centre).
        weights: [n, K] float32; identity: [n, I] float32; R: [n, 3, 3], t: [n, 3] head-to-world pose.
    """

    canvas: np.ndarray
    canvas_R: np.ndarray
    canvas_centre: np.ndarray
    canvas_focal: np.ndarray
    weights: np.ndarray
    identity: np.ndarray
    R: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return len(self.weights)


class SceneRenderer:
    """Draws and renders random scenes of one rig (converted to mm) on ``device`` (nvdiffrast on CUDA when
    installed, else the torch rasteriser); the draws themselves are on the CPU, so a scene is the same on any."""

    def __init__(self, rig: Rig, data: DataConfig, model: ModelConfig, device: torch.device | str = "cpu") -> None:
        if rig.landmark_vertices is None:
            raise FormatError("the rig has no landmark vertices: training crops are cut from the landmarks' box")
        self.rig = rig.in_units("mm")
        self.data, self.model = data, model
        self.device = torch.device(device)
        self.torch_rig = TorchRig.from_rig(self.rig, device=self.device)
        self.faces = torch.as_tensor(self.rig.faces, dtype=torch.long, device=self.device)
        self.opaque = torch.as_tensor(self.rig.opaque_faces(), device=self.device)
        self.regions = AlbedoRegions.from_rig(self.rig)
        self.partners = partner_shapes(self.rig.shape_names)
        self.landmarks = np.asarray(self.rig.landmark_vertices)
        self.reference = self.rig.neutral[self.landmarks].mean(0)
        self.ctx = make_context("auto", self.device)

    def _canvas_cameras(self, points: np.ndarray, camera_R: np.ndarray, camera_centre: np.ndarray,
                        rng: np.random.Generator) -> CropCameras:
        """The canvas camera of each view from the [L, 3] world landmarks' box in it, jittered like a detector's."""
        V = len(camera_R)
        t = -np.einsum("vij,vj->vi", camera_R, camera_centre)
        cam = np.einsum("vij,lj->vli", camera_R, points) + t[:, None]
        pixels = _BOX_FOCAL * cam[..., :2] / cam[..., 2:]
        centre, side, _ = landmark_box(pixels, np.ones(pixels.shape[:2]))
        j = self.data.box_jitter
        centre = centre + rng.uniform(-j, j, size=(V, 2)) * side[:, None]
        side = side * np.exp(rng.uniform(-2 * j, 2 * j, size=V))
        K = np.tile(np.diag([_BOX_FOCAL, _BOX_FOCAL, 1.0]), (V, 1, 1))
        cams = CameraTensors(K=torch.as_tensor(K), dist=torch.zeros(V, 14, dtype=torch.float64),
                             R=torch.as_tensor(camera_R), t=torch.as_tensor(t),
                             image_sizes=torch.full((V, 2), 2 * int(_BOX_FOCAL)), names=tuple(map(str, range(V))))
        return crop_cameras(cams, centre, side, self.data.canvas_size, self.model.margin * self.data.canvas_factor)

    @torch.no_grad()
    def render(self, rng: np.random.Generator) -> Scenes:
        """One random scene."""
        data = self.data
        weights = random_weights(self.partners, data, rng)
        identity = rng.normal(size=self.rig.num_identities) * rng.uniform(0, data.identity_sigma)
        geometry = random_scene_geometry(self.reference, data, rng)
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=self.device)[None]
        verts = self.torch_rig.evaluate(tensor(weights), tensor(geometry.R), tensor(geometry.t),
                                        tensor(identity) if len(identity) else None)
        canvas = self._canvas_cameras(verts[0, self.landmarks].double().cpu().numpy(), geometry.camera_R,
                                      geometry.camera_centre, rng)
        head = geometry.R @ self.reference + geometry.t
        towards = geometry.camera_centre.mean(0) - head
        sh, _ = random_lighting(data.lighting, towards / np.linalg.norm(towards), rng)
        normals = vertex_normals(verts, self.faces)
        attributes = torch.cat([tensor(random_albedo(self.regions, rng)), normals], -1)
        values, coverage = render_attribute(self.ctx, verts, self.faces, attributes,
                                            canvas.as_camera_tensors().to(self.device),
                                            scale=float(data.supersample), faces_subset=self.opaque, lens="none")
        normal = F.normalize(values[..., 3:], dim=-1)
        colour = values[..., :3] * sh_irradiance(normal, tensor(sh))
        rgba = torch.cat([colour.clamp(0, 1), coverage[..., None]], -1)[0].permute(0, 3, 1, 2)   # [V, 4, H, W]
        rgba = F.avg_pool2d(rgba, data.supersample) if data.supersample > 1 else rgba
        image = (rgba.permute(0, 2, 3, 1) * GREY_LEVELS).round().to(torch.uint8).cpu().numpy()
        return Scenes(canvas=image[None], canvas_R=canvas.R.numpy()[None], canvas_centre=canvas.centre.numpy()[None],
                      canvas_focal=canvas.focal.numpy()[None], weights=weights[None].astype(np.float32),
                      identity=identity[None].astype(np.float32), R=geometry.R[None], t=geometry.t[None])


def _stack(parts: list[Scenes]) -> Scenes:
    return Scenes(*(np.concatenate([getattr(p, name) for p in parts]) for name in Scenes.__dataclass_fields__))


def _chunk_paths(folder: Path, split: str, index: int) -> tuple[Path, Path]:
    stem = folder / f"{split}_{index:05d}"
    return stem.with_suffix(".canvas.npy"), stem.with_suffix(".npz")


def _save_chunk(scenes: Scenes, folder: Path, split: str, index: int) -> None:
    """Both files of a chunk, each written under a temporary name and renamed; the npz, last, marks it whole."""
    canvas_path, meta_path = _chunk_paths(folder, split, index)
    tmp = canvas_path.with_name(canvas_path.name + ".tmp.npy")
    np.save(tmp, scenes.canvas)
    os.replace(tmp, canvas_path)
    tmp = meta_path.with_name(meta_path.name + ".tmp.npz")
    np.savez(tmp, **{name: getattr(scenes, name) for name in Scenes.__dataclass_fields__ if name != "canvas"})
    os.replace(tmp, meta_path)


def _chunk_length(folder: Path, split: str, index: int) -> int:
    """Scenes in a whole chunk on disk (0 when there is none)."""
    canvas_path, meta_path = _chunk_paths(folder, split, index)
    if not meta_path.is_file():
        return 0
    return len(np.load(canvas_path, mmap_mode="r"))


def _chunk_counts(data: DataConfig) -> dict[str, list[int]]:
    """Scenes per chunk of each split."""
    def split(total: int) -> list[int]:
        return [min(data.chunk, total - start) for start in range(0, total, data.chunk)]
    return {"train": split(data.samples), "validation": split(data.validation)}


def generate_scenes(rig: Rig, data: DataConfig, model: ModelConfig, root: Path,
                    device: torch.device | str = "cpu") -> Path:
    """Render the training and validation scenes into their cache folder under ``root`` (chunks already
    there are kept); returns the folder. Each chunk draws from its own seeded stream, so the scenes do not
    depend on where a run was interrupted."""
    folder = scene_folder(root, rig, data, model)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(_scene_settings(rig, data, model), indent=1))
    todo = [(split, i, n) for split, sizes in _chunk_counts(data).items() for i, n in enumerate(sizes)
            if _chunk_length(folder, split, i) < n]
    if not todo:
        return folder
    renderer = SceneRenderer(rig, data, model, device)
    log.info("rendering %d scenes into %s", sum(n for *_, n in todo), folder)
    with progress(sum(n for *_, n in todo), "render scenes", "scene") as bar:
        for split, index, n in todo:
            stream = index if split == "train" else _VALIDATION_STREAM + index
            rng = np.random.default_rng([data.seed, stream])
            parts = []
            for _ in range(n):
                parts.append(renderer.render(rng))
                bar.update(1)
            _save_chunk(_stack(parts), folder, split, index)
    return folder


@dataclass(frozen=True)
class SceneSet:
    """The scenes of one split, read back: canvases memory-mapped, the rest in memory (see :class:`Scenes`)."""

    canvases: list[np.ndarray]
    offsets: np.ndarray
    scenes: Scenes

    @classmethod
    def open(cls, folder: Path, split: str, data: DataConfig) -> "SceneSet":
        """The first ``data.samples`` (or ``data.validation``) scenes of ``split`` in ``folder``."""
        canvases, metas = [], []
        for index, n in enumerate(_chunk_counts(data)[split]):
            if _chunk_length(folder, split, index) < n:
                raise FormatError(f"{folder}: {split} chunk {index} is missing or short; generate the scenes first")
            canvas_path, meta_path = _chunk_paths(folder, split, index)
            canvases.append(np.load(canvas_path, mmap_mode="r")[:n])
            with np.load(meta_path) as meta:
                metas.append({k: meta[k][:n] for k in meta.files})
        if not canvases:
            raise FormatError(f"no {split} scenes asked for")
        fields = {name: np.concatenate([m[name] for m in metas]) for name in Scenes.__dataclass_fields__
                  if name != "canvas"}
        offsets = np.cumsum([0] + [len(c) for c in canvases])
        return cls(canvases, offsets, Scenes(canvas=np.empty(0, np.uint8), **fields))

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def canvas(self, indices: np.ndarray) -> np.ndarray:
        """[n, V, Sc, Sc, 4] uint8 canvases of the scenes at ``indices``."""
        chunk = np.searchsorted(self.offsets, indices, side="right") - 1
        return np.stack([self.canvases[c][i - self.offsets[c]] for c, i in zip(chunk, indices)])
