"""What the Gauss-Newton fit works on: the fixed model, the take's state, a batch's observations."""

from dataclasses import dataclass, field, replace
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors, world_to_camera
from facecap.fit.appearance import Appearance, AppearanceStats, splat_visibility
from facecap.errors import FrameError
from facecap.fit.outline import mesh_edges
from facecap.render.shading import vertex_normals
from facecap.rig.evaluate import TorchRig
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D

__all__ = ["FitModel", "SequenceState", "BatchEvidence", "BatchObservations", "FrameParams", "POSE_PARAMS",
           "hessian_subset"]

POSE_PARAMS = 6       # rotation increment (3) and translation (3) per frame
HESSIAN_SAMPLES = 4096  # photometric rows of the normal matrix (the gradient uses them all)


def hessian_subset(num_samples: int, num_landmarks: int,
                   device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The rows that form the normal matrix: [M'] samples at a stride (about ``HESSIAN_SAMPLES`` of them), then every
    landmark (rows ``num_samples`` on); [M'] float32 the stride each stands for; how many of them are samples."""
    stride = max(1, -(-num_samples // HESSIAN_SAMPLES))
    sampled_rows = np.arange(0, num_samples, stride)
    rows = np.concatenate([sampled_rows, num_samples + np.arange(num_landmarks)])
    scale = np.where(rows < num_samples, stride, 1.0)
    return (torch.as_tensor(rows, device=device), torch.as_tensor(scale, device=device, dtype=torch.float32),
            len(sampled_rows))


@dataclass
class FitModel:
    """What stays fixed during the fit.

    Attributes:
        rig: the tracking rig in the calibration's units (every vertex: normals and occlusion).
        rows: the same rig at ``samples`` then ``landmarks`` only (the Jacobian's rows).
        faces: [F, 3] long; modelled_faces: [F'] the drawn triangles whose corners are all sampled
            (what the photometric model explains; the QA render shows these); sample_faces: [F'', 3] the
            triangles with a sampled corner, all that the samples' normals need (half of ICT's). cams: the
            take's cameras.
        samples: [N] face-region vertices sampled photometrically; landmarks: [L] rig landmark vertices.
        head_centre: [3] the samples' centroid in head coordinates; head_radius: their RMS distance
            from it, which turns radians into lengths.
        hessian_rows: [M'] indices into ``rows`` that form the normal matrix: samples at a stride,
            then every landmark; hessian_scale: [M'] the stride each stands for; hessian_samples: how
            many of those rows are samples (the first ones).
        sample_edges: [E, 2] the modelled triangles' edges, as indices into ``samples`` (the outline's).
    """

    rig: TorchRig
    rows: TorchRig
    faces: torch.Tensor
    modelled_faces: torch.Tensor
    sample_faces: torch.Tensor
    cams: CameraTensors
    samples: torch.Tensor
    landmarks: torch.Tensor
    head_centre: torch.Tensor
    head_radius: float
    hessian_rows: torch.Tensor
    hessian_scale: torch.Tensor
    hessian_samples: int
    sample_edges: torch.Tensor

    @classmethod
    def build(cls, rig: Rig, cams: CameraTensors, samples: np.ndarray, device: torch.device) -> "FitModel":
        rows = np.concatenate([samples, rig.landmark_vertices])
        head = rig.neutral[samples]
        centre = head.mean(0)
        drawn = rig.opaque_faces()
        modelled = drawn[np.isin(rig.faces[drawn], samples).all(axis=1)]
        around_samples = rig.faces[np.isin(rig.faces, samples).any(axis=1)]
        hessian_rows, hessian_scale, hessian_samples = hessian_subset(len(samples), len(rig.landmark_vertices), device)
        return cls(rig=TorchRig.from_rig(rig, device), rows=TorchRig.from_rig(rig, device, vertices=rows),
                   faces=torch.as_tensor(rig.faces, device=device).long(),
                   modelled_faces=torch.as_tensor(modelled, device=device).long(),
                   sample_faces=torch.as_tensor(around_samples, device=device).long(),
                   cams=cams.to(device),
                   samples=torch.as_tensor(samples, device=device).long(),
                   landmarks=torch.as_tensor(rig.landmark_vertices, device=device).long(),
                   head_centre=torch.as_tensor(centre, device=device, dtype=torch.float32),
                   head_radius=float(np.sqrt(((head - centre) ** 2).sum(1).mean())),
                   hessian_rows=hessian_rows, hessian_scale=hessian_scale, hessian_samples=hessian_samples,
                   sample_edges=torch.as_tensor(mesh_edges(rig.faces[modelled], samples), device=device).long())

    def sample_normals(self, verts: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] unit normals at the samples of [B, V, 3] posed vertices."""
        return vertex_normals(verts, self.sample_faces)[:, self.samples]

    def visible_samples(self, verts: torch.Tensor) -> torch.Tensor:
        """[B, C, N] which cameras see each sample of [B, V, 3] posed vertices: a point z-buffer of the whole mesh."""
        return splat_visibility(verts[:, self.samples], self.sample_normals(verts), self.cams, verts)

    def pixels_per_unit(self, R: torch.Tensor, t: torch.Tensor) -> float:
        """How finely the cameras resolve the head posed by [T, 3, 3] ``R`` and [T, 3] ``t``: focal
        length over depth at the head's centre (pixels per calibration unit), mean over frames and
        the cameras it is in front of."""
        centre = (R @ self.head_centre + t)[:, None]                           # [T, 1, 3]
        depth = world_to_camera(centre.to(self.cams.dtype), self.cams)[..., 0, 2]   # [T, C]
        focal = self.cams.K[:, :2, :2].diagonal(dim1=-2, dim2=-1).mean(-1)
        return float((focal / depth)[depth > 0].mean())


@dataclass
class FrameParams:
    """The unknowns of a batch: weights [B, K], R [B, 3, 3], t [B, 3], and the shared identity [I]."""

    weights: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    identity: torch.Tensor


@dataclass
class BatchEvidence:
    """What a fitted batch says about what the take's frames share, to add to the take's.

    Attributes:
        appearance_stats: the batch's appearance normal equations.
        identity_information, identity_eta: [I, I] and [I], the information form (H, H x) of the batch's
            evidence on the identity, its frames' own parameters eliminated (None without identity modes).
    """

    appearance_stats: AppearanceStats
    identity_information: torch.Tensor | None = None
    identity_eta: torch.Tensor | None = None


@dataclass
class SequenceState:
    """The whole take's parameters and what the fit has learnt so far; the fit's stages change it only
    through its methods.

    Attributes:
        weights: [T, K]; R: [T, 3, 3]; t: [T, 3]; identity: [I].
        appearance: None until the first batch has estimated it.
        appearance_stats: the appearance normal equations of the batches committed so far.
        identity_information, identity_eta: [I, I] and [I], the information form (H, H x) of what the
            batches committed so far say about the identity.
        damping: the Levenberg-Marquardt damping carried from batch to batch.
        prior: the landmark / coordinate-descent solution of every frame, which ``loss.mesh_prior``
            pulls the meshes towards (None: no prior).
        history: stage name -> energy per iteration, summed over the stage's batches.
        landmark_offsets: [C, L, 2] each camera's offset of every detected landmark from the rig's landmark
            vertices, removed from the detections once measured (None: the landmarks as given).
        damaged_views: "frame camera" -> why that view could not be read (it is left out of the fit).
    """

    weights: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    identity: torch.Tensor
    appearance: Appearance | None = None
    appearance_stats: AppearanceStats | None = None
    identity_information: torch.Tensor | None = None
    identity_eta: torch.Tensor | None = None
    damping: float = 1e-3
    prior: FrameParams | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    landmark_offsets: np.ndarray | None = None
    damaged_views: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, init: FrameParams, damping: float) -> "SequenceState":
        """The state at the landmark initialisation ``init``, which is also the mesh prior."""
        return cls(weights=init.weights.clone(), R=init.R.clone(), t=init.t.clone(), identity=init.identity.clone(),
                   damping=damping, prior=init)

    def adopt_performer(self, identity_information: torch.Tensor | None, appearance: Appearance,
                        albedo_evidence: AppearanceStats, landmark_offsets: np.ndarray | None) -> None:
        """Start from what an actor profile knows of the performer, as if its keyframes were this take's:
        the information [I, I] its fits gathered on the identity (the identity itself is the start's), the
        appearance to start from and the evidence on the albedo (normal equations whose lighting and
        camera terms are zero: those belong to the take), and the detector's offsets [C, L, 2] (None: not
        known for these cameras)."""
        if identity_information is not None:
            self.identity_information = identity_information.to(self.identity.dtype)
            self.identity_eta = self.identity_information @ self.identity
        self.appearance = appearance
        self.appearance_stats = albedo_evidence
        self.landmark_offsets = landmark_offsets

    def landmarks(self, given: Landmarks2D) -> Landmarks2D:
        """The ``given`` landmarks of the whole take as the fit uses them (less the detector's offsets)."""
        if self.landmark_offsets is None:
            return given
        return replace(given, points=given.points - self.landmark_offsets)

    def frame_params(self, index: torch.Tensor) -> FrameParams:
        """A copy of the frames ``index``'s parameters (and the identity), to optimise."""
        return FrameParams(self.weights[index].clone(), self.R[index].clone(), self.t[index].clone(),
                           self.identity.clone())

    def store(self, index: torch.Tensor, params: FrameParams, appearance: Appearance, damping: float) -> None:
        """Take on a batch's fitted parameters (its frames' and the shared identity), appearance and damping."""
        self.weights[index], self.R[index], self.t[index] = params.weights, params.R, params.t
        self.identity = params.identity
        self.appearance = appearance
        self.damping = damping

    def commit(self, evidence: BatchEvidence) -> None:
        """Add a finished batch's evidence on the appearance and identity to the take's."""
        def add(total: Any, new: Any) -> Any:
            return new if total is None else total + new
        self.appearance_stats = add(self.appearance_stats, evidence.appearance_stats)
        if evidence.identity_information is not None:
            self.identity_information = add(self.identity_information, evidence.identity_information)
            self.identity_eta = add(self.identity_eta, evidence.identity_eta)

    def restart_frames(self, index: torch.Tensor, weights: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                       prior: FrameParams) -> None:
        """Start the frames ``index`` again from new weights [n, K], R [n, 3, 3] and t [n, 3], with a new
        mesh prior for the whole take."""
        self.weights[index], self.R[index], self.t[index] = weights, R, t
        self.prior = prior

    def note_damaged(self, errors: Iterable[FrameError]) -> None:
        """Remember the views that could not be read (a frame's view is left out each time it is read)."""
        for error in errors:
            self.damaged_views[f"{error.frame} {error.camera}"] = str(error)

    def frames_without_views(self, num_cameras: int) -> np.ndarray:
        """[n] the frames none of whose ``num_cameras`` views could be read."""
        frames = [int(key.split()[0]) for key in self.damaged_views]
        counts = np.bincount(frames, minlength=1) if frames else np.zeros(0, int)
        return np.flatnonzero(counts >= num_cameras)

    def record(self, name: str, energies: list[float]) -> None:
        """Add a batch's energy per iteration to the history of the stage ``name``."""
        total = self.history.setdefault(name, [0.0] * len(energies))
        self.history[name] = [a + b for a, b in zip(total, energies)]


@dataclass
class BatchObservations:
    """Observations of one batch of frames at one image scale.

    Attributes: images [B, C, 3, H', W'] in [0, 1]; view_ok [B, C]: views that could be read (the others
    are left out of every term); points [B, C, L, 2] landmarks in full-resolution
    pixels; confidence [B, C, L]; scale: H' / H; silhouette: [B, C, 1, H, W] signed distance to the
    head's outline in full-resolution pixels (:mod:`facecap.take.silhouette`), or None;
    silhouette_found: [B, C] where the outline was found.
    """

    images: torch.Tensor
    points: torch.Tensor
    confidence: torch.Tensor
    scale: float
    view_ok: torch.Tensor | None = None
    silhouette: torch.Tensor | None = None
    silhouette_found: torch.Tensor | None = None
