"""Where a camera's frames come from: a folder of images or a video file (docs/formats.md §2).

Sources return frames as stored (uint8, uint16 or float32 arrays, [H, W, 3] RGB) so that a cache of
them stays small; `to_float` turns one into the float32 [0, 1] image the rest of facecap uses.

A view that cannot be used raises a :class:`facecap.errors.FrameError` naming the camera, frame and
file, so that a caller can leave that one view out: :class:`~facecap.errors.MissingFrameError` where a
camera has no file for the frame, :class:`~facecap.errors.DamagedFrameError` where the file or video
data is truncated or corrupt. Damage is detected, never decoded into a made-up image: JPEGs are decoded
by libjpeg-turbo through simplejpeg in strict mode, where libjpeg's warnings (premature end of data,
corrupt data, extraneous bytes) are errors (OpenCV's decoder fills a truncated JPEG with grey and only
warns on stderr; the pixels of intact files are the same); PNG, TIFF and the rest by OpenCV, whose
decoders fail on a bad CRC, truncation or garbage; a video frame that ffmpeg fails on or does not
deliver is damaged. Corruption that decodes as valid data (a few garbage bytes inside a JPEG's
entropy-coded data, bit errors a video decoder conceals) cannot be told from picture content.
"""

import logging
import os
import re
from pathlib import Path
from typing import Iterator

import cv2
import imageio_ffmpeg
import numpy as np
import simplejpeg

from facecap.errors import DamagedFrameError, FacecapError, FormatError, MissingFrameError

__all__ = ["FrameSource", "FolderSource", "VideoSource", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "natural_key",
           "file_numbers", "to_float", "read_image"]

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
JPEG_SUFFIXES = (".jpg", ".jpeg")
# Numbers in file names are frame counters when they span at most this many numbers per file; wider (time
# stamps, say) they are not, and the files are taken in name order.
MAX_SPAN_PER_FILE = 2


def natural_key(name: str) -> list:
    """Sort key that orders "f2" before "f10" (natural sort order, docs/formats.md §2)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def file_numbers(files: list[Path]) -> list[int] | None:
    """The frame number each file's name carries: the last run of digits in its stem ("cam01_000127.png"
    is 127), or None when some name carries none or two names carry the same number."""
    numbers = []
    for path in files:
        digits = re.findall(r"\d+", path.stem)
        if not digits:
            return None
        numbers.append(int(digits[-1]))
    return numbers if len(set(numbers)) == len(numbers) else None


def to_float(frame: np.ndarray) -> np.ndarray:
    """A stored frame as float32 [H, W, 3] in [0, 1]: 8 bit / 255, 16 bit / 65535, float (EXR) unchanged."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / np.float32(255)
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / np.float32(65535)
    return frame.astype(np.float32)


class _Undecodable(Exception):
    """An image file that does not decode; the message says why."""


def _to_rgb(image: np.ndarray, bgr: bool) -> np.ndarray:
    """Grey [H, W] or [H, W, 1], RGB(A) or BGR(A) -> [H, W, 3] RGB of the same dtype."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise _Undecodable(f"unsupported image layout {list(image.shape)}")
    if image.shape[2] <= 2:
        return np.repeat(image[:, :, :1], 3, axis=2)
    image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)


def _decode_image(path: Path) -> np.ndarray:
    """[H, W, 3] RGB as stored; raises _Undecodable saying why the file does not decode."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise _Undecodable(f"cannot read the file ({err.strerror})") from err
    if size == 0:
        raise _Undecodable("the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".exr":
        import imageio.v3 as iio
        try:
            image = np.asarray(iio.imread(path))
        except Exception as err:  # imageio raises many types; the user needs the file name
            raise _Undecodable(f"{err} (EXR needs an imageio plugin that reads it, e.g. `pip install "
                               "imageio[freeimage]` or OpenEXR)") from err
        return _to_rgb(image.astype(np.float32) if image.dtype.kind == "f" else image, bgr=False)
    if suffix in JPEG_SUFFIXES:
        data = path.read_bytes()
        try:
            colorspace = simplejpeg.decode_jpeg_header(data)[2]
            if colorspace not in ("CMYK", "YCCK"):     # those TurboJPEG cannot turn into RGB: cv2 below
                image = simplejpeg.decode_jpeg(data, colorspace="GRAY" if colorspace == "Gray" else "RGB",
                                               strict=True)
                return _to_rgb(image, bgr=False)
        except ValueError as err:  # strict: libjpeg's warnings (truncation, corrupt data) are errors too
            raise _Undecodable(f"truncated or corrupt JPEG ({err})") from err
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise _Undecodable("truncated, corrupt or not an image (the decoder failed)")
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    return _to_rgb(image, bgr=True)


def read_image(path: Path) -> np.ndarray:
    """One image file as stored, [H, W, 3] RGB uint8/uint16/float32; a file that does not decode raises
    FormatError naming it.

    JPEGs are decoded by simplejpeg in strict mode (truncated or corrupt data raises); PNG/TIFF by cv2.imread
    (IMREAD_UNCHANGED keeps 16 bit); EXR through imageio, since OpenCV builds read EXR only when
    OPENCV_IO_ENABLE_OPENEXR is set.
    """
    try:
        return _decode_image(Path(path))
    except _Undecodable as err:
        raise FormatError(f"cannot read image {path}: {err}") from err


class FrameSource:
    """A camera's frames, indexed 0..count-1 in file or video order."""

    name: str
    path: Path
    count: int
    image_size: tuple[int, int]  # (width, height)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored, [H, W, 3]; a view that cannot be used raises a FrameError."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files or decoder processes."""


class FolderSource(FrameSource):
    """A folder of image files, one a frame.

    Files are matched to frames by the number in their names: the last run of digits in the stem
    (``cam01_000127.png`` is 127). Frame ``k`` is the file numbered ``first + k``, ``first`` being the
    folder's smallest number, so that a gap in the numbers is a missing view of those frames (reading
    one raises MissingFrameError), never a shift of the camera's later frames. A missing first file
    cannot be told from a later start: ``frame_offset`` in take.json aligns such a camera. Where some
    name carries no number, two names carry the same one, or the numbers span more than
    MAX_SPAN_PER_FILE per file (time stamps, not frame counters), the files are taken in natural sort
    order of their names instead (FORMATS.md §2).
    """

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.path = name, folder
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                       key=lambda p: natural_key(p.name))
        if not files:
            raise FacecapError(f"camera '{name}': no frames ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        numbers = file_numbers(files)
        if numbers and max(numbers) - min(numbers) + 1 > MAX_SPAN_PER_FILE * len(files):
            log.warning("camera '%s': the numbers in its file names (%d..%d for %d files) are not frame counters; "
                        "its files are taken in name order", name, min(numbers), max(numbers), len(files))
            numbers = None
        self.first = min(numbers) if numbers else 0
        self.files = dict(zip((n - self.first for n in numbers), files)) if numbers else dict(enumerate(files))
        self.count = max(self.files) + 1
        if len(self.files) < self.count:
            log.warning("camera '%s': %d of the frame files numbered %d..%d are missing in %s; those views are "
                        "left out", name, self.count - len(self.files), self.first, self.first + self.count - 1,
                        folder)
        self.image_size = self._first_size()

    def _first_size(self) -> tuple[int, int]:
        """(width, height) of the first file that decodes."""
        reasons = []
        for path in self.files.values():
            try:
                first = _decode_image(path)
            except _Undecodable as err:
                reasons.append(f"{path.name}: {err}")
                if len(reasons) < 3:
                    continue
                break
            return (int(first.shape[1]), int(first.shape[0]))
        raise FacecapError(f"camera '{self.name}': its first frame files in {self.path} do not decode: "
                           + "; ".join(reasons))

    def read(self, index: int) -> np.ndarray:
        path = self.files.get(index)
        if path is None:
            raise MissingFrameError(self.name, index, self.path, f"no frame file numbered {self.first + index}")
        try:
            frame = _decode_image(path)
        except _Undecodable as err:
            raise DamagedFrameError(self.name, index, path, str(err)) from err
        if (frame.shape[1], frame.shape[0]) != self.image_size:
            raise DamagedFrameError(self.name, index, path, f"size {frame.shape[1]}x{frame.shape[0]} differs "
                                    f"from the camera's {self.image_size[0]}x{self.image_size[1]}")
        return frame


class VideoSource(FrameSource):
    """A video decoded by ffmpeg (imageio-ffmpeg) as 8-bit RGB.

    One decoder process stays open and is read sequentially; a backward jump or a jump further than
    MAX_SKIP_FRAMES ahead restarts it with an input seek (``-ss`` before ``-i``, which ffmpeg makes
    frame-accurate by decoding from the previous keyframe and dropping frames before the time). A frame
    that ffmpeg fails on, or that the stream ends before, raises DamagedFrameError; the next read
    restarts the decoder.
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
            raise FacecapError(f"camera '{name}': cannot read video {path}: {_first_line(err)}") from err
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
        try:
            self._gen = imageio_ffmpeg.read_frames(str(self.path), input_params=params)
            next(self._gen)  # the metadata dict
        except (StopIteration, RuntimeError, OSError) as err:
            self.close()
            raise DamagedFrameError(self.name, index, self.path, f"ffmpeg cannot start decoding at frame {index}: "
                                    f"{_first_line(err)}") from err
        self._next = index

    def _decode_next(self) -> np.ndarray:
        index = self._next
        try:
            raw = next(self._gen)
        except (StopIteration, RuntimeError, OSError) as err:
            self.close()
            reason = "the stream ends before it" if isinstance(err, StopIteration) else _first_line(err)
            raise DamagedFrameError(self.name, index, self.path, f"ffmpeg cannot decode frame {index} of "
                                    f"{self.count}: {reason}") from err
        w, h = self.image_size
        if len(raw) != w * h * 3:
            self.close()
            raise DamagedFrameError(self.name, index, self.path, f"ffmpeg returned {len(raw)} bytes for frame "
                                    f"{index}, not {w * h * 3}")
        self._next += 1
        return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)

    def read(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise MissingFrameError(self.name, index, self.path, f"the video has frames 0..{self.count - 1}")
        if self._gen is None or index < self._next or index - self._next > MAX_SKIP_FRAMES:
            log.debug("video %s: seek to frame %d", self.path, index)
            self._open(index)
        try:
            while self._next < index:
                self._decode_next()
        except DamagedFrameError:
            self._open(index)                          # a frame before it is damaged: seek past that one
        return self._decode_next().copy()

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __del__(self) -> None:
        self.close()


def _first_line(err: BaseException) -> str:
    """An ffmpeg error's first line (imageio-ffmpeg appends ffmpeg's whole banner and log)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
