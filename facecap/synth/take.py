"""Synthetic takes (docs/formats.md §2): render a rig's performance into calibrated cameras and write it out.

The take holds one frame folder (png/jpg) or video (mp4) per camera, ``take.json``,
``calibration.json`` and ``ground_truth.json``: the animation that made it (docs/formats.md §4) plus a
``generator`` block recording everything a fitter must recover or should never see (lights, SH
coefficients, camera gains, sensor noise, seed). Rendering uses :func:`facecap.render.renderer.render_views`
with supersampling (render at ``s`` times the size, then average ``s x s`` blocks, which keeps
pixel centres consistent) and the cameras' real lens distortion.
"""

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F

from facecap.animation import Animation, save_animation_json
from facecap.camera.model import Calibration, save_calibration
from facecap.camera.torch_camera import CameraTensors, world_to_camera
from facecap.config import config_to_dict, field
from facecap.errors import ConfigError, FormatError
from facecap.progress import track
from facecap.render.ops import make_context
from facecap.render.renderer import lens_warp_for, render_views
from facecap.render.shading import SH_C0, SH_COEFFS, sh_from_lights
from facecap.rig import Rig, TorchRig
from facecap.synth.motion import MotionConfig
from facecap.units import unit_scale

__all__ = ["RingConfig", "LightingConfig", "SynthConfig", "synthesize_take", "random_lighting", "GENERATOR_NAME"]

log = logging.getLogger(__name__)

GENERATOR_NAME = "facecap.synth"
GENERATOR_VERSION = 1
GREY_LEVELS = 255.0              # 8-bit output; noise sigma is given in these levels
FLAT_ALBEDO = (0.78, 0.6, 0.5)   # skin-like colour when the rig has no texture
# Near/far planes are taken from the whole performance's depth range, widened by these factors.
NEAR_FACTOR, FAR_FACTOR = 0.5, 2.0


@dataclass
class RingConfig:
    """A generated ring of cameras (used when no calibration file is given)."""

    num_cameras: int = field(4, "cameras on the arc in front of the face")
    width: int = field(320, "image width, pixels")
    height: int = field(240, "image height, pixels")
    distance: float = field(700.0, "camera distance from the head centre, mm")
    fov_deg: float = field(30.0, "vertical field of view, degrees (sets the focal length)")
    arc_deg: float = field(100.0, "azimuth span of the arc, degrees, centred on the face's +z")
    elevation_deg: float = field(8.0, "camera elevation angle, degrees (alternates full and half)")
    k1: float = field(-0.05, "radial distortion k1 of every camera (OpenCV)")


@dataclass
class LightingConfig:
    """Random lighting, fixed in the world for the whole take."""

    mode: Literal["lights", "sh"] = field("lights", "'lights': ambient + key + fill directional lights "
                                                    "projected to SH; 'sh': that plus random order-1/2 SH terms")
    ambient: tuple[float, float] = field((0.25, 0.4), "range of the ambient level")
    key: tuple[float, float] = field((0.5, 0.7), "range of the key light's intensity")
    fill: tuple[float, float] = field((0.1, 0.2), "range of the fill light's intensity")
    key_spread_deg: float = field(35.0, "largest angle between the key light and the mean camera direction")
    sh_noise: float = field(0.05, "std of the random SH terms added in 'sh' mode")


@dataclass
class SynthConfig:
    """Everything `facecap synth` needs besides the rig, cameras and performance files."""

    seed: int = field(0, "seed of every random choice (numpy Generator)")
    image_format: Literal["png", "jpg", "mp4"] = field("png", "frame folders of png/jpg, or one mp4 per camera")
    jpeg_quality: int = field(95, "JPEG quality (jpg only)")
    video_crf: int = field(12, "H.264 constant rate factor (mp4 only; lower = better)")
    supersample: int = field(2, "render at this many times the resolution and average down (antialiasing)")
    noise_sigma: float = field(2.0, "sensor noise std, in 8-bit grey levels")
    gain_spread: float = field(0.08, "per-camera RGB gains are drawn in [1 - spread, 1 + spread]")
    background: tuple[float, float, float] = field((0.12, 0.12, 0.14), "background colour, RGB in [0, 1]")
    start_timecode: str = field("00:00:00:00", "timecode of frame 0 (take.json)")
    backend: Literal["auto", "torch", "nvdiffrast"] = field("auto", "rasteriser backend")
    device: str = field("cpu", "torch device to render on (cuda with nvdiffrast)")
    batch_frames: int = field(2, "frames rendered per rasteriser call (memory vs speed)")
    ring: RingConfig = field(RingConfig(), "generated cameras (without a calibration file)")
    lighting: LightingConfig = field(LightingConfig(), "lighting")
    motion: MotionConfig = field(MotionConfig(), "generated performance (without an animation file)")

    def __post_init__(self) -> None:
        if self.supersample < 1 or self.batch_frames < 1:
            raise ConfigError("supersample and batch_frames must be >= 1")
        if self.noise_sigma < 0 or not 0 <= self.gain_spread < 1:
            raise ConfigError("noise_sigma must be >= 0 and gain_spread in [0, 1)")


def random_lighting(config: LightingConfig, towards_cameras: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """World-frame SH lighting [9, 3] and a description of it for the generator block.

    ``towards_cameras``: [3] unit vector from the head towards the cameras' mean position; the key
    light comes from within ``key_spread_deg`` of it, the fill from the mirrored side.
    """
    up = np.array([0.0, 1.0, 0.0])
    side = np.cross(up, towards_cameras)
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-9 else np.array([1.0, 0.0, 0.0])
    spread = math.radians(config.key_spread_deg)
    a, b = rng.uniform(-spread, spread), rng.uniform(0, spread)
    key = towards_cameras * math.cos(a) * math.cos(b) + side * math.sin(a) * math.cos(b) + up * math.sin(b)
    fill = towards_cameras - side * math.sin(abs(a) + spread) * 2
    dirs = np.stack([key / np.linalg.norm(key), fill / np.linalg.norm(fill)])
    tint = 1 + rng.uniform(-0.05, 0.05, size=(3, 3))
    ambient = rng.uniform(*config.ambient) * tint[0]
    colours = np.stack([rng.uniform(*config.key) * tint[1], rng.uniform(*config.fill) * tint[2]])
    sh = sh_from_lights(torch.as_tensor(ambient), torch.as_tensor(dirs), torch.as_tensor(colours)).numpy()
    if config.mode == "sh":
        sh[1:] += rng.normal(0, config.sh_noise, size=(SH_COEFFS - 1, 3)) / SH_C0
    info = {"mode": config.mode, "ambient": ambient.tolist(), "directions": dirs.tolist(),
            "colours": colours.tolist(), "sh": sh.tolist()}
    return sh, info


def _rig_weights(rig: Rig, animation: Animation) -> np.ndarray:
    """[T, K_rig] weights in the rig's shape order; shapes the animation lacks stay 0."""
    missing = [n for n in animation.shape_names if n not in rig.shape_names]
    if missing:
        raise FormatError(f"animation shapes not in the rig: {', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}")
    W = np.zeros((animation.num_frames, rig.num_shapes))
    W[:, [rig.shape_index(n) for n in animation.shape_names]] = animation.weights
    return W


def _albedo(rig: Rig, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(texture [T, H, W, 3] in [0, 1], uv [U, 2], uv_faces [F, 3]); a flat skin colour without texture or UVs."""
    if rig.texture is not None and rig.uv is not None:
        tex = torch.as_tensor(rig.texture, device=device).to(dtype) / GREY_LEVELS
        return tex, torch.as_tensor(rig.uv, device=device, dtype=dtype), torch.as_tensor(rig.uv_faces, device=device)
    log.warning("rig has no texture/UVs: rendering a flat albedo %s", FLAT_ALBEDO)
    tex = torch.tensor(FLAT_ALBEDO, device=device, dtype=dtype).reshape(1, 1, 1, 3)
    uv = torch.full((1, 2), 0.5, device=device, dtype=dtype)
    return tex, uv, torch.zeros(rig.faces.shape, dtype=torch.long, device=device)


def _clip_planes(meshes: Callable[[slice], torch.Tensor], cams: CameraTensors, num_frames: int,
                 batch_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair of [C] clip planes for the whole take, from the depth range of every frame's mesh."""
    with torch.no_grad():
        depth = torch.cat([world_to_camera(meshes(slice(i, i + batch_frames)), cams)[..., 2]
                           for i in range(0, num_frames, batch_frames)])
    if (depth <= 0).any():
        raise ConfigError("part of the head is behind a camera; move the cameras or the head")
    return depth.amin(dim=(0, 2)) * NEAR_FACTOR, depth.amax(dim=(0, 2)) * FAR_FACTOR


class _FrameWriter:
    """Writes one camera's frames as a folder of images or an mp4 (imageio-ffmpeg, H.264, yuv420p)."""

    def __init__(self, out_dir: Path, name: str, size: tuple[int, int], config: SynthConfig, fps: float):
        self.config = config
        if config.image_format == "mp4":
            if size[0] % 2 or size[1] % 2:
                raise ConfigError(f"mp4 needs even image sizes (yuv420p), camera {name} is {size[0]}x{size[1]}")
            self.video = imageio_ffmpeg.write_frames(
                str(out_dir / f"{name}.mp4"), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                quality=None, macro_block_size=1, output_params=["-crf", str(config.video_crf)])
            self.video.send(None)
        else:
            self.video = None
            self.folder = out_dir / name
            self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        """rgb: [H, W, 3] uint8."""
        if self.video is not None:
            self.video.send(np.ascontiguousarray(rgb))
        else:
            path = self.folder / f"{self.count:06d}.{self.config.image_format}"
            params = [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality] if self.config.image_format == "jpg" else []
            if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
                raise FormatError(f"could not write {path}")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def synthesize_take(rig: Rig, calibration: Calibration, animation: Animation, out_dir: str | Path,
                    config: SynthConfig | None = None) -> Path:
    """Render ``animation`` of ``rig`` into every camera of ``calibration`` and write a take.

    Args:
        rig: any rig (converted to the calibration's units); see-through materials are not drawn.
        calibration: cameras sharing one image size; world units as ``calibration.units``.
        animation: weights by shape name (a subset of the rig's) and head poses; its units are
            converted to the calibration's.
        out_dir: the take folder (created).
        config: rendering, noise and output options (defaults: :class:`SynthConfig`).
    Returns:
        ``out_dir`` as a Path.
    """
    config = config or SynthConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    device, dtype = torch.device(config.device), torch.float32
    rig = rig.in_units(calibration.units)
    s = unit_scale(animation.units, calibration.units)
    weights = _rig_weights(rig, animation)
    R_head, t_head = animation.R, animation.t * s
    cams = CameraTensors.from_calibration(calibration, device=device, dtype=dtype)
    W, H = cams.common_size()
    trig = TorchRig.from_rig(rig, device=device, dtype=dtype)
    faces = torch.as_tensor(rig.faces, device=device, dtype=torch.long)
    subset = torch.as_tensor(rig.opaque_faces(), device=device)
    tex, uv, uv_faces = _albedo(rig, device, dtype)

    head_centre = R_head[0] @ rig.neutral.mean(0) + t_head[0]
    towards = np.mean([c.center for c in calibration.cameras], 0) - head_centre
    sh, light_info = random_lighting(config.lighting, towards / np.linalg.norm(towards), rng)
    gains = rng.uniform(1 - config.gain_spread, 1 + config.gain_spread, size=(len(cams), 3))
    sh_t = torch.as_tensor(sh, device=device, dtype=dtype)[None]
    ones = torch.ones(len(cams), 3, device=device, dtype=dtype)
    gains_t = torch.as_tensor(gains, device=device, dtype=dtype)
    background = torch.as_tensor(config.background, device=device, dtype=dtype)

    def meshes(frames: slice) -> torch.Tensor:
        return trig.evaluate(torch.as_tensor(weights[frames], device=device, dtype=dtype),
                             torch.as_tensor(R_head[frames], device=device, dtype=dtype),
                             torch.as_tensor(t_head[frames], device=device, dtype=dtype))

    near_far = _clip_planes(meshes, cams, animation.num_frames, config.batch_frames)
    ctx = make_context(config.backend, device)
    ss = config.supersample
    lens = lens_warp_for(cams, float(ss))

    @torch.no_grad()
    def render(frames: slice) -> torch.Tensor:
        """[B, C, H, W, 3] linear images of ``frames``, supersampled and box-filtered, times the camera gains."""
        img = render_views(ctx, meshes(frames), faces, uv, uv_faces, tex, sh_t, cams, ones, ones * 0, background,
                           scale=float(ss), faces_subset=subset, lens=lens if lens is not None else "none",
                           near_far=near_far).image                        # [B, C, H*ss, W*ss, 3]
        B, C = img.shape[:2]
        if ss > 1:
            img = F.avg_pool2d(img.reshape(B * C, *img.shape[2:]).permute(0, 3, 1, 2), ss)
            img = img.permute(0, 2, 3, 1).reshape(B, C, H, W, 3)
        return img * gains_t[None, :, None, None, :]

    writers = [_FrameWriter(out, name, (W, H), config, animation.fps) for name in cams.names]
    try:
        for start in track(range(0, animation.num_frames, config.batch_frames), "synth", "batch"):
            img = render(slice(start, min(start + config.batch_frames, animation.num_frames)))
            pixels = img.cpu().numpy() * GREY_LEVELS + rng.normal(0, config.noise_sigma, size=img.shape)
            for views in np.clip(np.round(pixels), 0, GREY_LEVELS).astype(np.uint8):
                for writer, image in zip(writers, views):
                    writer.write(image)
    finally:
        for writer in writers:
            writer.close()

    save_calibration(calibration, out / "calibration.json")
    take = {"fps": animation.fps, "start_timecode": config.start_timecode,
            "frame_range": [0, animation.num_frames], "cameras": {n: {"frame_offset": 0} for n in cams.names}}
    (out / "take.json").write_text(json.dumps(take, indent=1))
    generator = {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": config.seed,
                 "config": config_to_dict(config), "rig_units": rig.units, "num_vertices": rig.num_vertices,
                 "lighting": light_info, "camera_gains": {n: g.tolist() for n, g in zip(cams.names, gains)},
                 "noise_sigma": config.noise_sigma, "background": list(config.background),
                 "supersample": config.supersample}
    truth = Animation(shape_names=rig.shape_names, weights=weights, R=R_head, t=t_head, fps=animation.fps,
                      units=calibration.units, frames=animation.frames, start_timecode=config.start_timecode,
                      extra={**animation.extra, "generator": generator})
    save_animation_json(truth, out / "ground_truth.json")
    log.info("wrote synthetic take %s: %d cameras x %d frames (%dx%d)", out, len(cams), animation.num_frames, W, H)
    return out
