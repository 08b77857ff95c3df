"""Quality checks of a finished fit: per-frame photometric error, and the QA video.

The video is a grid with a tile per camera. A tile has two panels: the reference frame with the
fitted model's edges drawn on it (its outline and the edges of its rendered appearance: lids, lips,
brows), and the signed difference of the model's render (estimated albedo, lighting and camera
response) and the frame, in a diverging colour map: white where they agree, red where the model is
brighter, blue where it is darker, the frame dimmed where the model does not cover it. Each tile
has its camera's name, the frame number and the timecode burned in. The grid is scaled to fit
``MAX_VIDEO_SIZE``, which every player accepts. Frames are rendered in batches with the rasteriser
of :mod:`facecap.render` and streamed to an H.264 file, so memory does not grow with the take.
"""

import logging
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import torch
from matplotlib import colormaps

from facecap.camera.torch_camera import project_points
from facecap.export.timecode import TimecodeMode, take_timecode
from facecap.fit.appearance import sample_images
from facecap.fit.problem import FitModel, SequenceState
from facecap.render.renderer import render_attribute
from facecap.render.shading import sh_basis

__all__ = ["FrameCheck", "check_frames", "QAVideo", "join_videos", "grid_layout", "qa_tiles", "DIFFERENCE_RANGE",
           "MAX_VIDEO_SIZE"]

log = logging.getLogger(__name__)

MAX_VIDEO_SIZE = (1920, 1080)        # width, height: full HD, which every player and codec level plays
DIFFERENCE_RANGE = 0.2               # |render - frame| (of full range) that saturates the difference colours
EDGE_THRESHOLD = 0.08                # Sobel magnitude (of full range, per pixel) of the render drawn as an edge
EDGE_COLOUR = (0.2, 1.0, 0.2)
OUTSIDE_DIM = 0.35                   # the frame's brightness where the model does not cover it, in the difference
_DIFFERENCE_COLOURS = colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3].astype(np.float32)
_LUMA = (0.299, 0.587, 0.114)        # Rec. 601 weights of R, G, B
_ASPECT = 16 / 9                     # among equally sharp grids, the one closest to this shape is chosen


@dataclass(frozen=True)
class FrameCheck:
    """What :func:`check_frames` measures for a batch of frames.

    Attributes:
        photometric_rms: [B] RMS colour error in grey levels (of 255) over the visible samples.
        photometric_rms_per_camera: [B, C] the same per camera (NaN where a camera sees no sample).
        panels: [B, C, h, 2w, 3] uint8 QA tiles (:func:`qa_tiles`), or None.
    """

    photometric_rms: np.ndarray
    photometric_rms_per_camera: np.ndarray
    panels: np.ndarray | None


@torch.no_grad()
def check_frames(model: FitModel, state: SequenceState, frames: np.ndarray, images: torch.Tensor,
                 view_ok: torch.Tensor, render_ctx: Any | None, qa_scale: float) -> FrameCheck:
    """Photometric error of the fitted ``frames`` against [B, C, 3, H, W] ``images`` in the views ``view_ok``
    [B, C] says were read, and QA tiles.

    Args:
        render_ctx: a rasteriser context for the QA tiles, or None for the error only.
        qa_scale: image scale of the QA tiles.
    """
    index = torch.as_tensor(frames, device=state.weights.device)
    verts = model.rig.evaluate(state.weights[index], state.R[index], state.t[index], identity=state.identity)
    X, n = verts[:, model.samples], model.sample_normals(verts)
    visible = (model.visible_samples(verts) & view_ok[..., None]).to(images.dtype)[..., None]
    appearance = state.appearance
    predicted = appearance.predict(sh_basis(n))
    observed = sample_images(images, project_points(X, model.cams))
    squared = ((predicted - observed) * 255) ** 2 * visible                  # [B, C, N, 3]
    counts = 3 * visible.sum((2, 3))                                          # [B, C]
    rms = torch.sqrt(squared.sum((1, 2, 3)) / counts.sum(1).clamp_min(1)).cpu().numpy()
    per_camera = torch.sqrt(squared.sum((2, 3)) / counts.clamp_min(1)).cpu().numpy()
    per_camera[counts.cpu().numpy() == 0] = np.nan
    if render_ctx is None:
        return FrameCheck(rms, per_camera, None)
    shaded = torch.zeros_like(verts)                     # only the modelled triangles are drawn
    shaded[:, model.samples] = appearance.albedo * (sh_basis(n) @ appearance.sh)
    values, coverage = render_attribute(render_ctx, verts, model.faces, shaded, model.cams, scale=qa_scale,
                                        faces_subset=model.modelled_faces)
    render = values * appearance.gains[None, :, None, None] + coverage[..., None] * appearance.bias[None, :, None, None]
    reference = _resized(images, render.shape[2:4])
    return FrameCheck(rms, per_camera, qa_tiles(reference, render.clamp(0, 1).cpu().numpy(), coverage.cpu().numpy()))


def _resized(images: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """[B, C, 3, H, W] frames to [B, C, h, w, 3] float32 at the render's size (area averages, top-left aligned)."""
    h, w = size
    frames = images.permute(0, 1, 3, 4, 2).float().cpu().numpy()
    B, C, H, W, _ = frames.shape
    scale = min(h / H, w / W)
    out_size = (max(1, round(W * scale)), max(1, round(H * scale)))
    out = np.zeros((B, C, h, w, 3), dtype=np.float32)
    for b in range(B):
        for c in range(C):
            out[b, c, :out_size[1], :out_size[0]] = cv2.resize(frames[b, c], out_size, interpolation=cv2.INTER_AREA)
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray(_LUMA, dtype=np.float32)


def qa_tiles(reference: np.ndarray, render: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """[B, C, h, 2w, 3] uint8 tiles: the frame with the render's edges | the signed difference render - frame.

    Args:
        reference: [B, C, h, w, 3] frames in [0, 1].
        render: [B, C, h, w, 3] the model's render in [0, 1], premultiplied by coverage.
        coverage: [B, C, h, w] in [0, 1].
    """
    covered = coverage > 0.5
    solid = covered.copy()                               # pixels whose 3x3 neighbourhood is all covered
    solid[..., 1:, :] &= covered[..., :-1, :]
    solid[..., :-1, :] &= covered[..., 1:, :]
    solid[..., :, 1:] &= covered[..., :, :-1]
    solid[..., :, :-1] &= covered[..., :, 1:]
    luma = _luma(render)
    gy, gx = np.gradient(luma, axis=(-2, -1))
    interior = solid.copy()                              # gradients at the outline are the outline's, not edges
    interior[..., 1:, :] &= solid[..., :-1, :]
    interior[..., :-1, :] &= solid[..., 1:, :]
    interior[..., :, 1:] &= solid[..., :, :-1]
    interior[..., :, :-1] &= solid[..., :, 1:]
    edges = (covered & ~solid) | (interior & (np.hypot(gx, gy) > EDGE_THRESHOLD))
    left = np.where(edges[..., None], np.asarray(EDGE_COLOUR, dtype=np.float32), reference)
    difference = (luma - _luma(reference)) / DIFFERENCE_RANGE
    index = np.clip(np.round((difference + 1) * 127.5), 0, 255).astype(np.int64)
    right = np.where(covered[..., None], _DIFFERENCE_COLOURS[index],
                     OUTSIDE_DIM * _luma(reference)[..., None].repeat(3, -1))
    tiles = np.concatenate([left, right], axis=-2)
    return (tiles.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def grid_layout(cameras: int, tile_size: tuple[int, int],
                max_size: tuple[int, int] = MAX_VIDEO_SIZE) -> tuple[int, int, float]:
    """(columns, rows, scale) of the grid that shows ``cameras`` tiles of (width, height) ``tile_size`` largest
    within ``max_size``, never enlarged; among equally large ones, the one closest to 16:9."""
    w, h = tile_size
    best = None
    for cols in range(1, cameras + 1):
        rows = math.ceil(cameras / cols)
        scale = min(1.0, max_size[0] / (cols * w), max_size[1] / (rows * h))
        shape = abs(math.log(cols * w / (rows * h) / _ASPECT))
        key = (-round(scale, 6), shape)
        if best is None or key < best[0]:
            best = (key, cols, rows, scale)
    return best[1], best[2], best[3]


class QAVideo:
    """Streams QA tiles to an H.264 mp4 as a labelled grid (:func:`grid_layout`), frame by frame.

    Args:
        path: the mp4 to write.
        fps: the take's frame rate.
        camera_names: the C camera names the tiles are labelled with (default "camera 0", ...).
        start_timecode: the timecode of take frame 0; labels count from it.
        timecode_mode: as ``export.timecode`` (:func:`facecap.export.timecode.take_timecode`).
    """

    def __init__(self, path: Path, fps: float, camera_names: Sequence[str] | None = None,
                 start_timecode: str = "00:00:00:00", timecode_mode: TimecodeMode = "auto") -> None:
        self.path = path
        self._names = None if camera_names is None else list(camera_names)
        self._clock = take_timecode(fps, start_timecode, timecode_mode)
        self._start = self._clock.parse(start_timecode)
        self._next_frame = 0
        self._writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1,
                                          ffmpeg_log_level="error")

    def write(self, panels: np.ndarray, frames: Sequence[int] | None = None) -> None:
        """Append [B, C, h, 2w, 3] uint8 tiles of take ``frames`` ([B]; default: on from the last written)."""
        B, C, h, w = panels.shape[:4]
        frames = range(self._next_frame, self._next_frame + B) if frames is None else frames
        names = self._names or [f"camera {c}" for c in range(C)]
        if len(names) != C:
            raise ValueError(f"QAVideo: {len(names)} camera names for {C} tiles")
        cols, rows, scale = grid_layout(C, (w, h))
        tw, th = max(2, round(w * scale)), max(2, round(h * scale))
        for tiles, frame in zip(panels, frames):
            canvas = np.zeros((rows * th + (rows * th) % 2, cols * tw + (cols * tw) % 2, 3), dtype=np.uint8)
            for c, tile in enumerate(tiles):
                small = tile if scale == 1.0 else cv2.resize(tile, (tw, th), interpolation=cv2.INTER_AREA)
                y, x = (c // cols) * th, (c % cols) * tw
                canvas[y:y + th, x:x + tw] = small
                _label(canvas, f"{names[c]}  frame {frame}  {self._clock.label(self._start + int(frame))}", x, y, th)
            self._writer.append_data(canvas)
        self._next_frame = int(frames[-1]) + 1 if len(frames) else self._next_frame

    def write_frames(self, frames: np.ndarray) -> None:
        """Append [N, H, W, 3] uint8 frames already laid out and labelled (a QA video's frames read back)."""
        for frame in frames:
            self._writer.append_data(frame)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "QAVideo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_videos(parts: list[Path], path: Path) -> None:
    """Concatenate mp4 ``parts`` written by :class:`QAVideo` into ``path`` without re-encoding (ffmpeg's
    concat demuxer): a QA video made in pieces, as a fit that resumes makes it."""
    listing = path.with_name(path.name + ".parts.txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    try:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                        str(listing), "-c", "copy", str(path)], check=True, capture_output=True)
    except subprocess.CalledProcessError as err:
        stderr = err.stderr.decode(errors="replace")
        raise RuntimeError(f"ffmpeg could not join the QA video's parts: {stderr}") from err
    finally:
        listing.unlink(missing_ok=True)


def _label(canvas: np.ndarray, text: str, x: int, y: int, tile_height: int) -> None:
    """Burn ``text`` in white on a dark band at the top-left of the tile at (x, y)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = float(np.clip(tile_height / 400, 0.35, 0.8))
    (width, height), baseline = cv2.getTextSize(text, font, scale, 1)
    pad = max(2, height // 3)
    cv2.rectangle(canvas, (x, y), (x + width + 2 * pad, y + height + baseline + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x + pad, y + pad + height), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
