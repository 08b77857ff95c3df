"""Where a camera's board images come from, and which images of different cameras show the same instant.

A source is a folder of images, a glob pattern (``data/left*.jpg``) or a video. Each source yields
its frames one at a time (grey uint8), so a thousand 12 MP images are never held together. Each frame
has a pairing key: the file stem (folders, or its position with ``pairing="order"``), the number in
the file name (globs, so that ``left07.jpg`` pairs with ``right07.jpg``), or the frame index (videos).
"""

import glob
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from facecap.errors import FacecapError, FormatError
from facecap.take.sources import read_image

__all__ = ["CameraSource", "open_source", "open_sources", "natural_key", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv")
Pairing = Literal["auto", "name", "order"]


def natural_key(text: str) -> list:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _to_gray8(image: np.ndarray) -> np.ndarray:
    """Grey uint8 from a grey or colour, 8 or 16 bit image (16 bit is scaled down, not clipped)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return image


@dataclass(frozen=True)
class CameraSource:
    """One camera's board frames.

    Attributes:
        name: camera name (folder name, glob prefix or video stem unless given).
        kind: "folder", "glob" or "video".
        keys: [F] pairing keys, one a frame. labels: [F] file paths, or ``video.mp4#frame``.
        frame_indices: [F] video frame numbers (videos only).
    """

    name: str
    kind: Literal["folder", "glob", "video"]
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    frame_indices: tuple[int, ...] = ()
    video: str = ""

    def frames(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """Yield ``(key, label, gray [H, W] uint8)`` one frame at a time; a file that does not decode (a
        truncated or corrupt one too) raises FormatError naming it."""
        if self.kind != "video":
            for key, label in zip(self.keys, self.labels):
                try:
                    image = read_image(Path(label))
                except FormatError as err:
                    raise FormatError(f"camera '{self.name}': {err}") from err
                yield key, label, _to_gray8(image[:, :, ::-1])
            return
        capture = cv2.VideoCapture(self.video)
        try:
            wanted = dict(zip(self.frame_indices, zip(self.keys, self.labels)))
            last = max(self.frame_indices, default=-1)
            for index in range(last + 1):
                if not capture.grab():
                    raise FormatError(f"camera '{self.name}': video {self.video} ends at frame {index}")
                if index in wanted:
                    ok, image = capture.retrieve()
                    if not ok:
                        raise FormatError(f"camera '{self.name}': cannot decode frame {index} of {self.video}")
                    yield *wanted[index], _to_gray8(image)
        finally:
            capture.release()


def _is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def _glob_source(spec: str, name: str | None) -> CameraSource:
    files = sorted((f for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
    if not files:
        raise FacecapError(f"no images match {spec!r}")
    keys = []
    for f in files:
        numbers = re.findall(r"\d+", Path(f).stem)
        if not numbers:
            raise FacecapError(f"{f} matches {spec!r} but has no number in its name to pair it by")
        keys.append(str(int(numbers[-1])))
    if len(set(keys)) != len(keys):
        raise FacecapError(f"two files matching {spec!r} carry the same number; cannot pair them")
    default = re.split(r"[*?\[]", Path(spec).name)[0].rstrip("_-. ") or Path(spec).parent.name
    return CameraSource(name or default, "glob", tuple(keys), tuple(files))


def _folder_source(path: Path, name: str | None, by_order: bool) -> CameraSource:
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: natural_key(p.name))
    if not files:
        raise FacecapError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    keys = [f"{i:06d}" for i in range(len(files))] if by_order else [p.stem for p in files]
    return CameraSource(name or path.name, "folder", tuple(keys), tuple(str(p) for p in files))


def _video_source(path: Path, name: str | None, step: int, max_frames: int) -> CameraSource:
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    if count <= 0:
        raise FormatError(f"cannot open video {path} (or it has no frames)")
    indices = list(range(0, count, step))[:max_frames]
    return CameraSource(name or path.stem, "video", tuple(f"{i:06d}" for i in indices),
                        tuple(f"{path}#{i}" for i in indices), tuple(indices), str(path))


def open_source(spec: str, name: str | None = None, by_order: bool = False, video_step: int = 10,
                max_video_frames: int = 200) -> CameraSource:
    """One camera's source from a folder, a glob pattern or a video path."""
    path = Path(spec)
    if _is_glob(spec) and not path.exists():
        return _glob_source(spec, name)
    if path.is_dir():
        return _folder_source(path, name, by_order)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _video_source(path, name, video_step, max_video_frames)
    raise FacecapError(f"camera source {spec!r} is not a folder, a glob pattern matching images, or a video "
                       f"({', '.join(VIDEO_SUFFIXES)})")


def open_sources(specs: list[str], names: list[str] | None = None, pairing: Pairing = "auto",
                 video_step: int = 10, max_video_frames: int = 200) -> list[CameraSource]:
    """Sources of all cameras, with keys that pair frames across cameras.

    ``pairing="auto"`` pairs folders by file stem when the folders share stems, else by order.
    """
    if not specs:
        raise FacecapError("no camera sources given")
    if names is not None and len(names) != len(specs):
        raise FacecapError(f"{len(names)} camera names for {len(specs)} sources")
    names = names or [None] * len(specs)
    sources = [open_source(s, n, pairing == "order", video_step, max_video_frames) for s, n in zip(specs, names)]
    folders = [s for s in sources if s.kind == "folder"]
    if pairing == "auto" and len(folders) > 1 and not set.intersection(*(set(s.keys) for s in folders)):
        log.info("camera folders share no file names: pairing their images by order")
        sources = [open_source(s, n, True, video_step, max_video_frames) if src.kind == "folder" else src
                   for s, n, src in zip(specs, names, sources)]
    taken = [s.name for s in sources]
    if len(set(taken)) != len(taken):
        raise FacecapError(f"camera names must be unique, got {taken}; name them with NAME=SOURCE")
    return sources
