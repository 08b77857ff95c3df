"""Finished chunks and built profiles on disk, so that a batch run again skips them.

A take's cache (``out/<take>/.facecap/cache``, kept across runs, failed ones included) holds::

    chunks/chunk-<index>-<fingerprint>.npz   a chunk's fit (FitResult's arrays; the rest as JSON)
    chunks/chunk-<index>-<fingerprint>.mp4   its QA video's rows of the frames it owns, when there is a QA video
    actor-<fingerprint>.npz                  the profile the batch built from the take's first chunk

The fingerprint is a digest of everything the result depends on (the take's files, the calibration,
the rigs, the fit config, the actor profile, the chunk's frames, facecap's version): a file whose name
carries the fingerprint of this run is this run's result. Each file is written under a temporary name
and renamed into place, the video before the npz, so a kill at any moment leaves no file that reads as
finished but is not.
"""

import io
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.fit.actor import ActorProfile, load_actor, save_actor
from facecap.fit.config import LossWeights
from facecap.fit.result import FitResult

__all__ = ["ChunkStore"]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ChunkStore:
    """The finished chunks and the built profile of one take, in its cache folder ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.chunks = self.root / "chunks"

    def _chunk(self, index: int, fingerprint: str, suffix: str) -> Path:
        return self.chunks / f"chunk-{index:06d}-{fingerprint}{suffix}"

    def load_chunk(self, index: int, fingerprint: str) -> FitResult | None:
        """The chunk's fit when this fingerprint's is stored whole (its QA rows as ``qa_video``), else None."""
        path = self._chunk(index, fingerprint, ".npz")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in data.files if k != "meta"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        video = self._chunk(index, fingerprint, ".mp4")
        if meta["has_qa"] and not video.is_file():
            return None
        animation = Animation(tuple(meta["shape_names"]), arrays["weights"], arrays["R"], arrays["t"], meta["fps"],
                              meta["units"], arrays["frames"], meta["start_timecode"])
        loss = None if meta["effective_loss"] is None else LossWeights(**meta["effective_loss"])
        return FitResult(animation=animation, identity=arrays["identity"], frame_ok=arrays["frame_ok"],
                         landmark_error_px=arrays["landmark_error_px"], photometric_rms=arrays["photometric_rms"],
                         qa_video=video if meta["has_qa"] else None, loss_history=meta["loss_history"],
                         seconds=meta["seconds"], effective_loss=loss, damaged_views=meta["damaged_views"],
                         camera_names=tuple(meta.get("camera_names", ())),
                         landmark_error_px_per_camera=arrays.get("landmark_error_px_per_camera"),
                         photometric_rms_per_camera=arrays.get("photometric_rms_per_camera"))

    def save_chunk(self, index: int, fingerprint: str, result: FitResult, qa: bytes | None) -> FitResult:
        """Store a chunk's fit (and its QA rows, ``qa``), replacing the chunk's earlier ones; returns it as
        :meth:`load_chunk` would."""
        self.chunks.mkdir(parents=True, exist_ok=True)
        for old in self.chunks.glob(f"chunk-{index:06d}-*"):
            old.unlink(missing_ok=True)
        if qa is not None:
            _write_atomic(self._chunk(index, fingerprint, ".mp4"), qa)
        anim = result.animation
        meta = {"shape_names": list(anim.shape_names), "fps": anim.fps, "units": anim.units,
                "start_timecode": anim.start_timecode, "has_qa": qa is not None,
                "loss_history": result.loss_history, "seconds": result.seconds,
                "effective_loss": None if result.effective_loss is None else asdict(result.effective_loss),
                "damaged_views": result.damaged_views, "camera_names": list(result.camera_names)}
        per_camera = {name: values for name, values in (
            ("landmark_error_px_per_camera", result.landmark_error_px_per_camera),
            ("photometric_rms_per_camera", result.photometric_rms_per_camera)) if values is not None}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), weights=anim.weights, R=anim.R, t=anim.t,
                 frames=anim.frame_numbers, identity=result.identity, frame_ok=result.frame_ok,
                 landmark_error_px=result.landmark_error_px, photometric_rms=result.photometric_rms, **per_camera)
        _write_atomic(self._chunk(index, fingerprint, ".npz"), buffer.getvalue())
        return self.load_chunk(index, fingerprint)

    def load_profile(self, fingerprint: str) -> ActorProfile | None:
        """The profile built with this fingerprint, or None."""
        path = self.root / f"actor-{fingerprint}.npz"
        return load_actor(path) if path.is_file() else None

    def save_profile(self, fingerprint: str, profile: ActorProfile) -> Path:
        """Store the built profile, replacing earlier ones; returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        for old in self.root.glob("actor-*.npz"):
            old.unlink(missing_ok=True)
        path = self.root / f"actor-{fingerprint}.npz"
        save_actor(profile, path)
        return path
