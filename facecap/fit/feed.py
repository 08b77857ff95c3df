"""A take's frames fed to the fit batch by batch, each batch prepared while the one before is fitted.

Reading a batch is host work: decoding its frames and finding the head's outline in each
(:mod:`facecap.take.silhouette`). For 9 views at 1600×1200 that is about 12 ms and 90 ms an image
on one core, 7 s for a batch of 8 frames: longer than a GPU needs to fit the batch. The feed
spreads it over threads (OpenCV and NumPy release the GIL): a task per camera reads its frames in
order (a video decodes forward only), a task per frame finds the outline. It starts reading the
next batch as soon as the current one's frames are read, while their outlines are still being
found. Frames travel to the device as stored (8-bit frames as bytes, a quarter of float32) and
become floats there; the coarse scales are area averages taken there too.
"""

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facecap.errors import FrameError
from facecap.fit.problem import BatchObservations
from facecap.take.landmarks import Landmarks2D
from facecap.take.reader import Take
from facecap.take.silhouette import silhouette_distance
from facecap.take.sources import to_float

__all__ = ["FrameBatch", "feed_batches", "read_batch", "frames_to_device", "default_threads"]

log = logging.getLogger(__name__)

# A camera's stored frames, each with its outline to come; a view that cannot be read is its FrameError.
_Camera = list[tuple[np.ndarray, Future | None] | FrameError]


@dataclass
class FrameBatch:
    """One batch of a take's frames on the fit's device.

    Attributes:
        frames: [B] take frame indices.
        images: [B, C, 3, H, W] float32 colours in [0, 1] (0 in a view that could not be read).
        view_ok: [B, C] bool: the view was read (a missing or damaged frame file is left out, not guessed).
        damaged: the errors of the views that could not be read.
        silhouette: [B, C, 1, H, W] signed distances to the head's outline in pixels, or None when not asked for.
        silhouette_found: [B, C] where a plain background let the outline be found, or None.
    """

    frames: np.ndarray
    images: torch.Tensor
    view_ok: torch.Tensor
    damaged: tuple[FrameError, ...] = ()
    silhouette: torch.Tensor | None = None
    silhouette_found: torch.Tensor | None = None

    def images_at(self, scale: float) -> torch.Tensor:
        """[B, C, 3, H', W'] the images area-averaged to ``scale`` (H' = round(H · scale))."""
        if scale == 1.0:
            return self.images
        H, W = self.images.shape[-2:]
        small = F.interpolate(self.images.flatten(0, 1), size=(round(H * scale), round(W * scale)), mode="area")
        return small.unflatten(0, self.images.shape[:2])

    def observations(self, landmarks: Landmarks2D, scale: float,
                     offsets: np.ndarray | None = None) -> BatchObservations:
        """What the fit compares with at ``scale``: the images there, the batch's landmarks (less
        ``offsets`` [C, L, 2] px, when given), the outlines."""
        def on_device(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, device=self.images.device, dtype=torch.float32)
        points = landmarks.points[self.frames] - (0.0 if offsets is None else offsets)
        confidence = on_device(landmarks.confidence[self.frames]) * self.view_ok[..., None]
        return BatchObservations(images=self.images_at(scale), points=on_device(points), confidence=confidence,
                                 scale=scale, view_ok=self.view_ok, silhouette=self.silhouette,
                                 silhouette_found=self.silhouette_found)


def default_threads() -> int:
    """As many reader threads as CPU cores."""
    return os.cpu_count() or 1


def _outline(frame: np.ndarray) -> np.ndarray | None:
    return silhouette_distance(to_float(frame))


def _read_camera(pool: ThreadPoolExecutor, take: Take, camera: int, frames: np.ndarray, silhouettes: bool) -> _Camera:
    """The camera's ``frames`` read in order; each frame's outline is searched for by another task. A view
    that cannot be read (a missing or damaged file) is its error."""
    read: _Camera = []
    for i in frames:
        try:
            frame = take.frame_raw(camera, int(i))
        except FrameError as err:
            read.append(err)
            continue
        read.append((frame, pool.submit(_outline, frame) if silhouettes else None))
    return read


def frames_to_device(stored: np.ndarray, device: torch.device) -> torch.Tensor:
    """[..., H, W, 3] frames as stored -> [..., 3, H, W] float32 in [0, 1] on ``device`` (as :func:`to_float`):
    8-bit frames travel as bytes, and become floats in one pass there."""
    if stored.dtype != np.uint8:
        return torch.from_numpy(to_float(stored)).to(device).movedim(-1, -3).contiguous()
    raw = torch.from_numpy(stored).to(device)
    images = torch.empty(raw.movedim(-1, -3).shape, dtype=torch.float32, device=device)
    return images.copy_(raw.movedim(-1, -3)).div_(255)


def _assemble(frames: np.ndarray, cameras: Sequence[_Camera], silhouettes: bool, size: tuple[int, int],
              device: torch.device) -> FrameBatch:
    """The batch from each camera's reads; ``size`` (width, height) of the views, for a batch none of which
    could be read."""
    read = [(b, c, view) for c, cam in enumerate(cameras) for b, view in enumerate(cam)
            if not isinstance(view, FrameError)]
    damaged = tuple(view for cam in cameras for view in cam if isinstance(view, FrameError))
    for error in damaged:
        log.warning("left out of the fit: %s", error)
    like = read[0][2][0] if read else np.zeros((size[1], size[0], 3), np.uint8)
    stored = np.zeros((len(frames), len(cameras), *like.shape), dtype=like.dtype)         # [B, C, H, W, 3]
    view_ok = np.zeros((len(frames), len(cameras)), dtype=bool)
    for b, c, (frame, _) in read:
        stored[b, c], view_ok[b, c] = frame, True
    batch = FrameBatch(np.asarray(frames), frames_to_device(stored, device), torch.from_numpy(view_ok).to(device),
                       damaged)
    if silhouettes:
        distances = np.zeros((len(frames), len(cameras), 1, *like.shape[:2]), dtype=np.float32)
        found = np.zeros((len(frames), len(cameras)), dtype=bool)
        for b, c, (_, outline) in read:
            distance = outline.result()
            if distance is not None:
                distances[b, c, 0], found[b, c] = distance, True
        if not found.all():
            log.info("no plain background behind %d of %d views: they have no silhouette term",
                     (~found).sum(), found.size)
        batch.silhouette = torch.from_numpy(distances).to(device)
        batch.silhouette_found = torch.from_numpy(found).to(device)
    return batch


def feed_batches(take: Take, plan: Sequence[np.ndarray], device: torch.device, silhouettes: bool,
                 threads: int) -> Iterator[FrameBatch]:
    """The batches of ``plan`` (arrays of take frame indices) in order, each read by ``threads`` threads
    while the caller works on the one before.

    Only this generator reads ``take`` until it is exhausted or closed: a camera's frames are read by
    one task at a time, in order; the outlines are found by a task a frame.
    """
    cameras = range(len(take.camera_names))
    size = take.image_size(0)
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="facecap-feed") as pool:
        def submit(frames: np.ndarray) -> list[Future]:
            return [pool.submit(_read_camera, pool, take, c, frames, silhouettes) for c in cameras]

        pending = submit(plan[0]) if len(plan) else []
        try:
            for k, frames in enumerate(plan):
                read = [future.result() for future in pending]      # the take is free: read the next batch
                pending = submit(plan[k + 1]) if k + 1 < len(plan) else []
                yield _assemble(frames, read, silhouettes, size, device)
        finally:
            for future in pending:
                future.cancel()


def read_batch(take: Take, frames: np.ndarray, device: torch.device, silhouettes: bool,
               threads: int = 1) -> FrameBatch:
    """``frames`` of every camera, read now (:func:`feed_batches` reads ahead)."""
    return next(feed_batches(take, [frames], device, silhouettes, threads))
