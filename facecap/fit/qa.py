"""Quality checks of a finished fit: per-frame photometric error, and the QA video.

The video has one row per camera and three columns: the reference frame, the fitted model
rendered with the estimated appearance (albedo, lighting, camera response; only the surface the
photometric model explains, so no lashes or mouth inside), and the render laid over the
reference, so misfits show as ghosting. Frames are rendered in batches with the
rasteriser of :mod:`facecap.render` and streamed to an H.264 file, so memory does not grow with
the take.
"""

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import torch

from facecap.camera.torch_camera import project_points
from facecap.fit.appearance import sample_images, splat_visibility
from facecap.fit.problem import FitModel, SequenceState
from facecap.render.renderer import render_attribute
from facecap.render.shading import sh_basis

__all__ = ["FrameCheck", "check_frames", "QAVideo", "join_videos"]

log = logging.getLogger(__name__)

OVERLAY_ALPHA = 0.5


@dataclass(frozen=True)
class FrameCheck:
    """What :func:`check_frames` measures for a batch of frames.

    Attributes:
        photometric_rms: [B] RMS colour error in grey levels (of 255) over the visible samples.
        panels: [B, C*h, 3*w, 3] uint8 QA video frames, or None.
    """

    photometric_rms: np.ndarray
    panels: np.ndarray | None


@torch.no_grad()
def check_frames(model: FitModel, state: SequenceState, frames: np.ndarray, images: torch.Tensor,
                 view_ok: torch.Tensor, render_ctx: Any | None, qa_scale: float) -> FrameCheck:
    """Photometric error of the fitted ``frames`` against [B, C, 3, H, W] ``images`` in the views ``view_ok``
    [B, C] says were read, and QA panels.

    Args:
        render_ctx: a rasteriser context for the QA panels, or None for the error only.
        qa_scale: image scale of the QA panels.
    """
    index = torch.as_tensor(frames, device=state.weights.device)
    verts = model.rig.evaluate(state.weights[index], state.R[index], state.t[index], identity=state.identity)
    X, n = verts[:, model.samples], model.sample_normals(verts)
    visible = (splat_visibility(X, n, model.cams, verts) & view_ok[..., None]).to(images.dtype)[..., None]
    appearance = state.appearance
    predicted = appearance.predict(sh_basis(n))
    observed = sample_images(images, project_points(X, model.cams))
    squared = (((predicted - observed) * 255) ** 2 * visible).sum((1, 2, 3))
    rms = torch.sqrt(squared / (3 * visible.sum((1, 2, 3))).clamp_min(1)).cpu().numpy()
    if render_ctx is None:
        return FrameCheck(rms, None)
    shaded = torch.zeros_like(verts)                     # only the modelled triangles are drawn
    shaded[:, model.samples] = appearance.albedo * (sh_basis(n) @ appearance.sh)
    values, coverage = render_attribute(render_ctx, verts, model.faces, shaded, model.cams, scale=qa_scale,
                                        faces_subset=model.modelled_faces)
    render = values * appearance.gains[None, :, None, None] + coverage[..., None] * appearance.bias[None, :, None, None]
    return FrameCheck(rms, _panels(images, render.clamp(0, 1), coverage))


def _panels(images: torch.Tensor, render: torch.Tensor, coverage: torch.Tensor) -> np.ndarray:
    """[B, C*h, 3*w, 3] uint8 rows of reference | render | overlay per camera."""
    B, C, h, w, _ = render.shape
    reference = np.zeros((B, C, h, w, 3), dtype=np.float32)
    frames = images.permute(0, 1, 3, 4, 2).cpu().numpy()
    for b in range(B):
        for c in range(C):
            H, W = frames.shape[2:4]
            scale = min(h / H, w / W)
            size = (max(1, round(W * scale)), max(1, round(H * scale)))
            small = cv2.resize(frames[b, c], size, interpolation=cv2.INTER_AREA)
            reference[b, c, :size[1], :size[0]] = small
    render_np = render.cpu().numpy()
    alpha = OVERLAY_ALPHA * coverage.cpu().numpy()[..., None]
    overlay = reference * (1 - alpha) + render_np * alpha
    rows = np.concatenate([reference, render_np, overlay], axis=3)          # [B, C, h, 3w, 3]
    return (rows.reshape(B, C * h, 3 * w, 3).clip(0, 1) * 255 + 0.5).astype(np.uint8)


class QAVideo:
    """Streams QA panels to an H.264 mp4 (frames padded to even sizes, as the codec needs)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self._writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1,
                                          ffmpeg_log_level="error")

    def write(self, panels: np.ndarray) -> None:
        for panel in panels:
            h, w = panel.shape[:2]
            self._writer.append_data(np.pad(panel, ((0, h % 2), (0, w % 2), (0, 0))))

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
        raise RuntimeError(f"ffmpeg could not join the QA video's parts: {err.stderr.decode(errors='replace')}") from err
    finally:
        listing.unlink(missing_ok=True)
