"""Where a camera's frames come from: a folder of images or a video file (docs/formats.md §2).

Sources return frames as stored (uint8, uint16 or float32 arrays, [H, W, 3] RGB) so that a cache of
them stays small; `to_float` turns one into the float32 [0, 1] image the rest of facecap uses.
"""

import logging
import os
import re
from pathlib import Path
from typing import Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from facecap.errors import FacecapError

__all__ = ["FrameSource", "FolderSource", "VideoSource", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "natural_key",
           "to_float", "read_image"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv")
# imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp unless this is set. A preexec_fn forces a plain
# fork(), which can deadlock when other threads run (Python's subprocess docs; imageio-ffmpeg #58), and the
# fit reads cameras in threads (facecap.fit.feed). Without it ffmpeg is spawned safely (vfork).
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
# Reading forward through at most this many unwanted frames is cheaper than restarting ffmpeg with a seek,
# which decodes from the previous keyframe anyway (x264's default GOP is 250 frames).
MAX_SKIP_FRAMES = 64


def natural_key(name: str) -> list:
    """Sort key that orders "f2" before "f10" (natural sort order, docs/formats.md §2)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def to_float(frame: np.ndarray) -> np.ndarray:
    """A stored frame as float32 [H, W, 3] in [0, 1]: 8 bit / 255, 16 bit / 65535, float (EXR) unchanged."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / np.float32(255)
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / np.float32(65535)
    return frame.astype(np.float32)


def _to_rgb(image: np.ndarray, path: Path, bgr: bool) -> np.ndarray:
    """Grey [H, W] or [H, W, 1], RGB(A) or BGR(A) -> [H, W, 3] RGB of the same dtype."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise FacecapError(f"{path}: unsupported image layout {list(image.shape)}")
    if image.shape[2] <= 2:
        return np.repeat(image[:, :, :1], 3, axis=2)
    image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)


def read_image(path: Path) -> np.ndarray:
    """One image file as stored, [H, W, 3] RGB uint8/uint16/float32; unreadable files raise naming the file.

    PNG/JPEG/TIFF are decoded with cv2.imread(IMREAD_UNCHANGED) (keeps 16 bit); EXR goes through imageio,
    since OpenCV builds read EXR only when OPENCV_IO_ENABLE_OPENEXR is set.
    """
    if path.suffix.lower() == ".exr":
        import imageio.v3 as iio
        try:
            image = np.asarray(iio.imread(path))
        except Exception as err:  # imageio raises many types; the user needs the file name
            raise FacecapError(f"cannot read frame {path}: {err} (EXR needs an imageio plugin that reads it, "
                               "e.g. `pip install imageio[freeimage]` or OpenEXR)") from err
        return _to_rgb(image.astype(np.float32) if image.dtype.kind == "f" else image, path, bgr=False)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FacecapError(f"cannot read frame {path}: not a readable image")
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    return _to_rgb(image, path, bgr=True)


class FrameSource:
    """A camera's frames, indexed 0..count-1 in file or video order."""

    name: str
    path: Path
    count: int
    image_size: tuple[int, int]  # (width, height)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored, [H, W, 3]."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files or decoder processes."""


class FolderSource(FrameSource):
    """A folder of image files, taken in natural sort order of their names."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.path = name, folder
        self.files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise FacecapError(f"camera '{name}': no frames ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        self.count = len(self.files)
        first = read_image(self.files[0])
        self.image_size = (int(first.shape[1]), int(first.shape[0]))

    def read(self, index: int) -> np.ndarray:
        path = self.files[index]
        frame = read_image(path)
        if (frame.shape[1], frame.shape[0]) != self.image_size:
            raise FacecapError(f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from the camera's "
                               f"first frame {self.image_size[0]}x{self.image_size[1]}")
        return frame


class VideoSource(FrameSource):
    """A video decoded by ffmpeg (imageio-ffmpeg) as 8-bit RGB.

    One decoder process stays open and is read sequentially; a backward jump or a jump further than
    MAX_SKIP_FRAMES ahead restarts it with an input seek (``-ss`` before ``-i``, which ffmpeg makes
    frame-accurate by decoding from the previous keyframe and dropping frames before the time).
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self._gen: Iterator | None = None
        self._next = 0
        try:
            self.count = int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
            gen = imageio_ffmpeg.read_frames(str(path))
            meta = next(gen)
            gen.close()
        except Exception as err:  # ffmpeg failures come as RuntimeError/IOError/StopIteration variants
            raise FacecapError(f"camera '{name}': cannot read video {path}: {err}") from err
        if self.count <= 0:
            raise FacecapError(f"camera '{name}': video {path} has no frames")
        self.fps = float(meta.get("fps") or 0.0)
        self.image_size = tuple(int(v) for v in meta["size"])

    def _open(self, index: int) -> None:
        self.close()
        params = None
        if index > 0:
            if self.fps <= 0:
                raise FacecapError(f"video {self.path}: unknown frame rate, cannot seek to frame {index}")
            # Aim half a frame early: the first frame whose timestamp is at or after it is frame ``index``.
            params = ["-ss", f"{(index - 0.5) / self.fps:.6f}"]
        self._gen = imageio_ffmpeg.read_frames(str(self.path), input_params=params)
        next(self._gen)  # the metadata dict
        self._next = index

    def _decode_next(self) -> np.ndarray:
        try:
            raw = next(self._gen)
        except (StopIteration, RuntimeError, OSError) as err:
            raise FacecapError(f"video {self.path}: cannot decode frame {self._next} of {self.count}: {err}") from err
        w, h = self.image_size
        self._next += 1
        return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)

    def read(self, index: int) -> np.ndarray:
        if self._gen is None or index < self._next or index - self._next > MAX_SKIP_FRAMES:
            log.debug("video %s: seek to frame %d", self.path, index)
            self._open(index)
        while self._next < index:
            self._decode_next()
        return self._decode_next().copy()

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __del__(self) -> None:
        self.close()
