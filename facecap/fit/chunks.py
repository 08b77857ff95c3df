"""A take in chunks: fitted apart (in parallel, on other machines), stitched into one fit.

A take of T frames is split into chunks of ``chunk_frames`` frames, each sharing ``overlap`` frames with
the next (:func:`chunk_spans`). Each chunk is fitted on its own (``fit_take(..., frames=(start, stop))``),
with the performer's actor profile so that every chunk starts from the same identity and appearance.
:func:`stitch_chunks` joins the fits: outside the overlaps each frame is its chunk's; in an overlap the
two chunks' curves are cross-faded, weights and translations linearly and rotations by slerp, with a
raised-cosine blend that is 0 and 1 just outside the overlap, so neither chunk's first or last frames
(which have temporal context on one side only) weigh much. The frames of an overlap's first half take their
per-frame figures (landmark and photometric errors, interpolation flags, the QA video's rows) from the
earlier chunk, the second half from the later one: each chunk *owns* its frames between the overlaps'
midpoints (:attr:`Chunk.own_start`, :attr:`Chunk.own_stop`).

:func:`seam_roughness` says whether the seams show: the second differences of the weights, the head's
rotation and its translation in each overlap, against the 95th percentile of the same over the take.
"""

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.camera.model import Calibration
from facecap.errors import ConfigError, FacecapError
from facecap.fit.actor import ActorProfile
from facecap.fit.config import FitConfig
from facecap.fit.pipeline import fit_take
from facecap.fit.qa import QAVideo
from facecap.fit.result import FitResult
from facecap.rig.model import Rig
from facecap.units import unit_scale

__all__ = ["Chunk", "chunk_spans", "stitch_chunks", "crossfade", "seam_roughness", "SeamRoughness",
           "second_differences", "trim_qa_video", "animation_frames", "fit_chunk"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a take: frames ``start`` to ``stop`` - 1 (counted as the take's, from its frame range's
    start), of which it owns ``own_start`` to ``own_stop`` - 1 (see the module docstring)."""

    index: int
    start: int
    stop: int
    own_start: int
    own_stop: int

    @property
    def num_frames(self) -> int:
        return self.stop - self.start

    @property
    def frames(self) -> tuple[int, int]:
        """(start, stop): ``fit_take``'s ``frames``."""
        return self.start, self.stop


def chunk_spans(num_frames: int, chunk_frames: int, overlap: int) -> list[Chunk]:
    """The chunks of a take of ``num_frames`` frames: ``chunk_frames`` each, neighbours sharing ``overlap``;
    the last ends with the take (it is between ``overlap`` + 1 and ``chunk_frames`` frames long).

    Raises:
        ConfigError: ``overlap`` < 0, or ``chunk_frames`` < 2 ``overlap`` + 1 (the cross-fades of a chunk's two
            ends would meet), or no frames.
    """
    if num_frames < 1:
        raise ConfigError("a take to split into chunks needs at least one frame")
    if overlap < 0 or chunk_frames < 2 * overlap + 1:
        raise ConfigError(f"chunks of {chunk_frames} frames cannot overlap by {overlap}: the overlap must be >= 0 "
                          "and at most half a chunk, less a frame")
    step = chunk_frames - overlap
    starts = list(range(0, max(num_frames - overlap, 1), step))
    stops = [min(s + chunk_frames, num_frames) for s in starts]
    mids = [(starts[k + 1] + stops[k]) // 2 for k in range(len(starts) - 1)]
    own = [0, *mids, num_frames]
    return [Chunk(k, s, e, own[k], own[k + 1]) for k, (s, e) in enumerate(zip(starts, stops))]


def crossfade(n: int) -> np.ndarray:
    """[n] the later chunk's share of each of ``n`` overlapping frames: a raised cosine, 0 and 1 one frame
    outside the overlap, symmetric about its middle."""
    x = np.arange(1, n + 1) / (n + 1)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def animation_frames(anim: Animation, start: int, stop: int) -> Animation:
    """The rows ``start`` to ``stop`` - 1 of ``anim`` (row indices, not frame numbers)."""
    return replace(anim, weights=anim.weights[start:stop], R=anim.R[start:stop], t=anim.t[start:stop],
                   frames=anim.frame_numbers[start:stop])


def _blend_rotations(Ra: np.ndarray, Rb: np.ndarray, share: np.ndarray) -> np.ndarray:
    """[n, 3, 3] slerp from ``Ra`` to ``Rb`` ([n, 3, 3]) by ``share`` [n] per frame."""
    a = Rotation.from_matrix(Ra)
    step = (a.inv() * Rotation.from_matrix(Rb)).as_rotvec()
    return (a * Rotation.from_rotvec(step * share[:, None])).as_matrix()


def stitch_chunks(chunks: list[Chunk], fits: list[FitResult], qa_video: Path | None = None) -> FitResult:
    """One fit of the whole take from the fits of its ``chunks`` (in order, each fitted on exactly its frames).

    Weights, rotations and translations are cross-faded in the overlaps (see the module docstring); each
    frame's figures come from the chunk that owns it; the identity is the chunks' mean weighted by their
    frames; the loss history and the seconds are summed over the chunks (so ``seconds['total']`` is the
    compute time, not the wall time); the effective loss is the first chunk's. ``qa_video``: the joined QA
    video, if any.
    """
    if len(chunks) != len(fits) or not chunks:
        raise FacecapError(f"stitching needs one fit per chunk, got {len(fits)} fits for {len(chunks)} chunks")
    for chunk, fit in zip(chunks, fits):
        if fit.animation.num_frames != chunk.num_frames:
            raise FacecapError(f"chunk {chunk.index} (frames {chunk.start}..{chunk.stop - 1}) has a fit of "
                               f"{fit.animation.num_frames} frames")
    first = fits[0].animation
    T = chunks[-1].stop
    weights = np.zeros((T, first.num_shapes))
    R = np.zeros((T, 3, 3))
    t = np.zeros((T, 3))
    frame_ok = np.zeros(T, bool)
    landmark_error, photometric = np.zeros(T), np.zeros(T)
    per_camera = all(f.landmark_error_px_per_camera is not None and f.photometric_rms_per_camera is not None
                     and f.camera_names == fits[0].camera_names for f in fits)
    C = len(fits[0].camera_names)
    landmark_views, photometric_views = (np.full((T, C), np.nan), np.full((T, C), np.nan)) if per_camera else \
        (None, None)
    for chunk, fit in zip(chunks, fits):
        anim, rows = fit.animation, slice(chunk.start, chunk.stop)
        weights[rows], R[rows], t[rows] = anim.weights, anim.R, anim.t      # later chunks write over overlaps
        own = slice(chunk.own_start - chunk.start, chunk.own_stop - chunk.start)
        frame_ok[chunk.own_start:chunk.own_stop] = fit.frame_ok[own]
        landmark_error[chunk.own_start:chunk.own_stop] = fit.landmark_error_px[own]
        photometric[chunk.own_start:chunk.own_stop] = fit.photometric_rms[own]
        if per_camera:
            landmark_views[chunk.own_start:chunk.own_stop] = fit.landmark_error_px_per_camera[own]
            photometric_views[chunk.own_start:chunk.own_stop] = fit.photometric_rms_per_camera[own]
    for (a, fa), (b, fb) in zip(zip(chunks, fits), zip(chunks[1:], fits[1:])):
        overlap = a.stop - b.start
        if overlap <= 0:
            continue
        share = crossfade(overlap)
        ia, ib = slice(b.start - a.start, a.num_frames), slice(0, overlap)
        rows = slice(b.start, a.stop)
        weights[rows] = (1 - share[:, None]) * fa.animation.weights[ia] + share[:, None] * fb.animation.weights[ib]
        t[rows] = (1 - share[:, None]) * fa.animation.t[ia] + share[:, None] * fb.animation.t[ib]
        R[rows] = _blend_rotations(fa.animation.R[ia], fb.animation.R[ib], share)
    frames = np.concatenate([f.animation.frame_numbers for f in fits])
    numbers = np.empty(T, np.int64)
    numbers[np.concatenate([np.arange(c.start, c.stop) for c in chunks])] = frames
    animation = replace(first, weights=weights, R=R, t=t, frames=numbers)
    sizes = np.array([c.num_frames for c in chunks], dtype=np.float64)
    identity = np.average(np.stack([f.identity for f in fits]), axis=0, weights=sizes)
    history: dict[str, list[float]] = {}
    for fit in fits:
        for name, energies in fit.loss_history.items():
            total = history.get(name, [0.0] * len(energies))
            history[name] = [x + y for x, y in zip(total, energies)] if len(total) == len(energies) else total
    seconds: dict[str, float] = {}
    for fit in fits:
        for phase, s in fit.seconds.items():
            seconds[phase] = seconds.get(phase, 0.0) + s
    damaged = sorted({view for fit in fits for view in fit.damaged_views})
    return FitResult(animation=animation, identity=identity, frame_ok=frame_ok, landmark_error_px=landmark_error,
                     photometric_rms=photometric, qa_video=qa_video, loss_history=history, seconds=seconds,
                     effective_loss=fits[0].effective_loss, damaged_views=damaged,
                     camera_names=fits[0].camera_names if per_camera else (),
                     landmark_error_px_per_camera=landmark_views, photometric_rms_per_camera=photometric_views)


@dataclass(frozen=True)
class SeamRoughness:
    """How the seams of a stitched fit compare with its motion elsewhere.

    A seam's window is its overlap and a frame either side: the frames whose second difference the
    cross-fade touches (for chunks that do not overlap, the last frame of one and the first of the next).
    Its roughness is the largest second difference in the window; the take's motion gives the same figure
    for every window of that width that touches no seam, and a seam is no rougher than the motion when it
    is within their 95th percentile.

    Attributes:
        seams: [S, 3] the largest second difference in each seam's window, of the weights (L2 norm over the
            shapes), the rotation (degrees) and the translation (mm).
        p95: [S, 3] the 95th percentile of the same over the take's windows as wide as the seam's that touch no
            seam (all of them where every window touches one).
    """

    seams: np.ndarray
    p95: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """[S, 3] each seam's figure over the take's 95th percentile (<= 1: no rougher than the motion)."""
        return self.seams / np.maximum(self.p95, 1e-12)

    @property
    def worst(self) -> float:
        """The largest ratio over seams and quantities (0 without seams)."""
        return float(self.ratio.max()) if self.seams.size else 0.0


def second_differences(anim: Animation) -> np.ndarray:
    """[T, 3] per frame the norm of the second difference of the weights, the rotation (degrees: the change of
    the frame-to-frame rotation) and the translation (mm); 0 at the first and last frame."""
    T = anim.num_frames
    out = np.zeros((T, 3))
    if T < 3:
        return out
    out[1:-1, 0] = np.linalg.norm(anim.weights[2:] - 2 * anim.weights[1:-1] + anim.weights[:-2], axis=1)
    rotations = Rotation.from_matrix(anim.R)
    steps = (rotations[:-1].inv() * rotations[1:]).as_rotvec()             # [T-1] frame-to-frame, head frame
    out[1:-1, 1] = np.degrees(np.linalg.norm(steps[1:] - steps[:-1], axis=1))
    t = anim.t * unit_scale(anim.units, "mm")
    out[1:-1, 2] = np.linalg.norm(t[2:] - 2 * t[1:-1] + t[:-2], axis=1)
    return out


def seam_roughness(anim: Animation, chunks: list[Chunk]) -> SeamRoughness:
    """The roughness of each seam of a stitched fit ``anim`` of ``chunks`` against the take's motion away from
    the seams (see :class:`SeamRoughness`); second differences are taken where they are defined."""
    d2 = second_differences(anim)[1:-1]                                     # rows: frames 1 .. T-2
    # each seam's window: frames b.start-1 .. a.stop, rows b.start-2 .. a.stop-1
    spans = [(max(b.start - 2, 0), min(a.stop, len(d2))) for a, b in zip(chunks, chunks[1:])]
    spans = [(lo, hi) for lo, hi in spans if hi > lo]
    near_seam = np.zeros(len(d2), bool)
    for lo, hi in spans:
        near_seam[lo:hi] = True
    seams, p95 = [], []
    for lo, hi in spans:
        width = hi - lo
        windows = np.lib.stride_tricks.sliding_window_view(d2, width, axis=0).max(-1)    # [T-2-width+1, 3]
        touched = np.lib.stride_tricks.sliding_window_view(near_seam, width).any(-1)
        reference = windows[~touched] if (~touched).any() else windows
        seams.append(d2[lo:hi].max(0))
        p95.append(np.percentile(reference, 95, axis=0))
    return SeamRoughness(np.array(seams).reshape(-1, 3), np.array(p95).reshape(-1, 3))


def trim_qa_video(source: Path, target: Path, start: int, stop: int, fps: float) -> None:
    """Write rows ``start`` to ``stop`` - 1 of the QA video ``source`` to ``target`` (re-encoded as
    :class:`QAVideo` writes them, so that :func:`facecap.fit.qa.join_videos` joins them without re-encoding)."""
    reader = imageio.get_reader(source)
    try:
        with QAVideo(target, fps) as video:
            for i, frame in enumerate(reader):
                if i >= stop:
                    break
                if i >= start:
                    video.write_frames(frame[None])
    finally:
        reader.close()


def fit_chunk(take_path: str | Path, calibration: str | Path | Calibration, rig: Rig, config: FitConfig,
              chunk: Chunk, out_dir: str | Path, landmarks_cache: str | Path, actor: ActorProfile | None = None,
              tracking_rig: Rig | None = None) -> FitResult:
    """Fit one chunk of a take (``fit_take`` on its frames, from ``actor``); its QA video keeps the rows of the
    frames it owns.

    ``out_dir``: the chunk's own folder (its work files and QA video); ``landmarks_cache``: where detections
    are cached unless the config names a cache, shared by the take's chunks.
    """
    out_dir = Path(out_dir)
    if config.landmarks.detected and not config.landmarks.cache_dir:
        config = replace(config, landmarks=replace(config.landmarks, cache_dir=str(landmarks_cache)))
    result = fit_take(take_path, calibration, rig, config, out_dir / "fit", tracking_rig=tracking_rig,
                      work_dir=out_dir / "work", frames=chunk.frames, actor=actor)
    if result.qa_video is None:
        return result
    owned = out_dir / f"qa_{chunk.index:06d}.mp4"
    trim_qa_video(result.qa_video, owned, chunk.own_start - chunk.start, chunk.own_stop - chunk.start,
                  result.animation.fps)
    return replace(result, qa_video=owned)
