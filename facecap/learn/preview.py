"""``preview_take``: the network alone over a take, as an animation to look at within seconds of the take.

With ``boxes="landmarks"`` every frame's crops come from its own landmarks (a landmarks file's, or the
detector's), and frames are run in batches. With ``boxes="track"`` only every ``anchor_frames``-th frame's
do; the frames between take theirs from the head the network found in the frame before, projected into
each view (:func:`facecap.learn.infer.boxes_from_pose`), so the detector runs on the anchors alone; a frame
where the face was lost in every view goes back to its landmarks.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facecap.animation import Animation
from facecap.camera.model import Calibration, load_calibration
from facecap.errors import ConfigError
from facecap.fit.init import interpolate_missing_frames
from facecap.fit.pipeline import resolve_device
from facecap.learn.config import PreviewConfig
from facecap.learn.infer import FramePredictions, boxes_from_landmarks, boxes_from_pose, predict_frames
from facecap.learn.modelfile import InitModel
from facecap.progress import track
from facecap.take.landmarks import Landmarks2D, detect_landmarks, load_landmarks
from facecap.take.reader import Take, open_take

__all__ = ["PreviewResult", "preview_take"]

log = logging.getLogger(__name__)


@dataclass
class PreviewResult:
    """The preview's animation (the model's shape names, the calibration's units), the frames no view
    showed (interpolated), and its wall time in seconds (model loading excluded)."""

    animation: Animation
    frame_ok: np.ndarray
    seconds: float


class _Landmarks:
    """Landmarks of single frames on demand: rows of a landmarks file, or the detector's (cached)."""

    def __init__(self, take: Take, config: PreviewConfig, work_dir: Path) -> None:
        source = config.landmarks
        self.take = take
        self.file = None
        if source.landmarks_file:
            self.file = load_landmarks(source.landmarks_file).cameras(take.camera_names).for_take(
                take.num_frames, source.landmarks_file)
        elif not source.model_path:
            raise ConfigError("config key 'landmarks.model_path': give MediaPipe's face_landmarker.task, or a "
                              "landmarks file with landmarks.landmarks_file")
        self.model_path = source.model_path
        self.cache = Path(source.cache_dir) if source.cache_dir else work_dir / "landmarks_cache"

    def frames(self, frames: np.ndarray) -> Landmarks2D:
        """Landmarks of ``frames`` (rows in that order)."""
        if self.file is not None:
            return Landmarks2D(self.file.points[frames], self.file.confidence[frames], self.file.camera_names,
                               self.file.scheme)
        return detect_landmarks(self.take, self.model_path, cache_dir=self.cache,
                                frames=frames).cameras(self.take.camera_names)


def _frame_images(take: Take, frames: np.ndarray) -> list[list[np.ndarray]]:
    return [[take.frame_raw(c, int(i)) for c in range(len(take.camera_names))] for i in frames]


def _tracked(model: InitModel, take: Take, calibration: Calibration, landmarks: _Landmarks,
             anchor_frames: int) -> list[FramePredictions]:
    """Frame by frame, each frame's crops from the head found in the frame before, but for the anchors'."""
    results: list[FramePredictions] = []
    for i in track(range(take.num_frames), "preview", "frame"):
        previous = results[-1] if results and i % anchor_frames else None
        boxes = boxes_from_pose(model, previous, calibration) if previous is not None and previous.ok[0] else None
        if boxes is None or not boxes.found.any():
            boxes = boxes_from_landmarks(landmarks.frames(np.array([i])))
        results.append(predict_frames(model, _frame_images(take, [i]), calibration, boxes))
    return results


def _batched(model: InitModel, take: Take, calibration: Calibration, landmarks: _Landmarks,
             batch_frames: int) -> list[FramePredictions]:
    """Batches of frames, each frame's crops from its own landmarks."""
    every = landmarks.frames(np.arange(take.num_frames))
    results = []
    for start in track(range(0, take.num_frames, batch_frames), "preview", "batch"):
        frames = np.arange(start, min(start + batch_frames, take.num_frames))
        results.append(predict_frames(model, _frame_images(take, frames), calibration,
                                      boxes_from_landmarks(every, frames)))
    return results


def preview_take(take_path: str | Path, calibration: str | Path | Calibration, model: InitModel,
                 config: PreviewConfig, work_dir: str | Path) -> PreviewResult:
    """The network's weights and head pose for every frame of a take.

    Args:
        take_path: the take folder. calibration: calibration.json or a loaded Calibration.
        model: the trained initialiser (:func:`facecap.learn.modelfile.load_init_model`).
        config: where landmarks come from, how boxes are placed, device and threads.
        work_dir: where the detector's cache goes unless ``config.landmarks.cache_dir`` says (kept across runs).
    """
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    model.net.to(resolve_device(config.device))
    calib = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    with open_take(take_path, calib) as take:
        calib = take.calibration
        landmarks = _Landmarks(take, config, Path(work_dir))
        parts = _tracked(model, take, calib, landmarks, config.anchor_frames) if config.boxes == "track" else \
            _batched(model, take, calib, landmarks, config.batch_frames)
        ok = np.concatenate([p.ok for p in parts])
        weights, R, t = interpolate_missing_frames(ok, np.concatenate([p.weights for p in parts]),
                                                   np.concatenate([p.R for p in parts]),
                                                   np.concatenate([p.t for p in parts]))
        animation = Animation(shape_names=model.shape_names, weights=weights, R=R, t=t, fps=take.fps,
                              units=calib.units, frames=take.first_frame + np.arange(take.num_frames),
                              start_timecode=take.start_timecode)
    seconds = time.perf_counter() - started
    log.info("previewed %d frames in %.1f s (%.1f frames/s); %d without a view of the face", animation.num_frames,
             seconds, animation.num_frames / seconds, int((~ok).sum()))
    return PreviewResult(animation=animation, frame_ok=ok, seconds=seconds)
