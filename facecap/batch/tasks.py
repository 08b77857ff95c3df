"""What a batch's Ray tasks run: one chunk's fit, or a take's actor profile, on one thread each.

These are plain functions (Ray wraps them in :mod:`facecap.batch.runner`); a single process that calls
them gets exactly what the cluster's workers compute. A task uses one torch thread and one BLAS thread:
the cluster runs as many tasks as it has cores, and threads of one task would only take cores from
another.
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from facecap.fit.actor import ActorProfile, ProfileTake, build_actor_profile
from facecap.fit.chunks import Chunk, fit_chunk
from facecap.fit.config import FitConfig
from facecap.fit.result import FitResult
from facecap.rig.model import Rig

__all__ = ["ChunkTask", "run_chunk", "run_profile", "one_thread"]


@contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread and one BLAS thread within the block."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a take to fit: the take's folder and calibration, the chunk, and the take's cache (its
    landmark detections are kept there, under ``landmarks_cache``, unless the config names a cache)."""

    take: Path
    calibration: Path
    chunk: Chunk
    cache: Path


def run_chunk(task: ChunkTask, rig: Rig, tracking_rig: Rig | None, config: FitConfig,
              actor: ActorProfile | None) -> tuple[FitResult, bytes | None]:
    """Fit ``task``'s chunk (:func:`facecap.fit.chunks.fit_chunk`) in a temporary folder; returns the fit
    (without a video path) and the QA video's rows of the frames the chunk owns (None without a QA video)."""
    with one_thread(), tempfile.TemporaryDirectory(prefix="facecap-chunk-") as folder:
        result = fit_chunk(task.take, task.calibration, rig, config, task.chunk, folder,
                           task.cache / "landmarks_cache", actor=actor, tracking_rig=tracking_rig)
        qa = None if result.qa_video is None else result.qa_video.read_bytes()
    return replace(result, qa_video=None), qa


def run_profile(take: Path, calibration: Path, frames: tuple[int, int], tracking_rig: Rig, config: FitConfig,
                cache: Path) -> ActorProfile:
    """The actor profile of the keyframes of ``frames`` of ``take`` (detections cached in ``cache``)."""
    with one_thread():
        return build_actor_profile([ProfileTake(take, calibration, frames)], tracking_rig, config, cache)
