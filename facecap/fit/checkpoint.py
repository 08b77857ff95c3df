"""Checkpoints of a fit between its stages, so that a killed fit resumes where it stopped.

A checkpoint holds what the stages done so far have learnt (the :class:`SequenceState`), the loss weights
as scaled for the take, the photometric errors of the frames already final, and a fingerprint of what the
fit was given: the take's frames, the rig, the landmarks and the config. A fit resumes from a checkpoint
only when the fingerprint is the same, and otherwise says what changed. It is written atomically (a
temporary file renamed over the old one), so a kill at any moment leaves the previous checkpoint whole.

The file is a ``torch.save`` of plain containers and tensors, read back with ``weights_only=True``: no
pickled objects, so a checkpoint cannot run code when it is loaded.
"""

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facecap import __version__
from facecap.config import config_to_dict
from facecap.errors import FacecapError
from facecap.fit.appearance import Appearance, AppearanceStats
from facecap.fit.config import FitConfig, LossWeights
from facecap.fit.problem import FrameParams, SequenceState
from facecap.fit.take_loss import TakeLoss
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D
from facecap.take.reader import Take

if TYPE_CHECKING:
    from facecap.fit.actor import ActorProfile

__all__ = ["Checkpoint", "fingerprint", "save_checkpoint", "load_checkpoint", "take_digest", "rig_digest", "digest",
           "config_fingerprint", "CHECKPOINT_NAME"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1
# Config keys that change how a fit runs, not what it computes: a resumed fit may set them anew.
_RUNTIME_KEYS = ("reader_threads", "checkpoint_seconds")
# The dataclasses a checkpoint may hold, by name.
_TYPES = {cls.__name__: cls for cls in (SequenceState, FrameParams, Appearance, AppearanceStats, TakeLoss,
                                        LossWeights)}


@dataclass
class Checkpoint:
    """A fit's progress after ``stages_done`` stages of its plan.

    Attributes:
        stages_done: how many stages of the plan are done.
        state: the take's state after them.
        loss: the loss weights as scaled for the take (None before the first stage).
        photometric_rms: [T] the photometric error of the frames already final (NaN elsewhere), and
            photometric_rms_per_camera [T, C] per view.
        fingerprint: what the fit was given (:func:`fingerprint`).
    """

    stages_done: int
    state: SequenceState
    loss: TakeLoss | None
    photometric_rms: np.ndarray
    photometric_rms_per_camera: np.ndarray
    fingerprint: dict[str, str]


def digest(*parts: Any) -> str:
    """A short hex digest of arrays (their bytes) and JSON-able values, in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:32]


def take_digest(take: Take) -> str:
    """The take's cameras, frames and the files behind them (names, sizes, modification times)."""
    files = []
    for camera in take.camera_names:
        source = take.source_path(camera)
        entries = sorted(source.iterdir()) if source.is_dir() else [source]
        files.append([camera, [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in entries if p.is_file()]])
    return digest(files, list(take.frame_range), take.fps)


def rig_digest(rig: Rig) -> str:
    """The rig's shape names, units, geometry, shapes, correctives, identity modes and landmark vertices."""
    arrays = [rig.neutral, rig.faces, rig.shape_deltas, rig.corrective_keys, rig.corrective_deltas,
              rig.identity_deltas, rig.landmark_vertices]
    return digest(list(rig.shape_names), rig.units, *(np.ascontiguousarray(a) for a in arrays if a is not None))


def fingerprint(take: Take, rig: Rig, landmarks: Landmarks2D, config: FitConfig,
                actor: "ActorProfile | None" = None) -> dict[str, str]:
    """What a fit's result depends on: the take's frames, the tracking rig, the landmarks, the actor profile
    (when one is given) and each config key (by its value; keys that only change how the fit runs are left out)."""
    profile = {} if actor is None else {"the actor profile": actor.digest()}
    return {"facecap": __version__, "the take's frames": take_digest(take), "the rig": rig_digest(rig),
            "the landmarks": digest(landmarks.points, landmarks.confidence), **profile, **config_fingerprint(config)}


def config_fingerprint(config: FitConfig) -> dict[str, str]:
    """"config key 'name'" -> its value as JSON, for every key that changes what a fit computes (keys that only
    change how it runs are left out)."""
    flat = {}

    def walk(section: dict[str, Any], prefix: str = "") -> None:
        for key, value in section.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif prefix + key not in _RUNTIME_KEYS:
                flat[f"config key '{prefix}{key}'"] = json.dumps(value)
    walk(config_to_dict(config))
    return flat


def _pack(value: Any) -> Any:
    """Dataclasses, arrays and containers as dicts, lists and tensors that ``weights_only`` loading accepts."""
    if dataclasses.is_dataclass(value):
        return {"__type__": type(value).__name__,
                **{f.name: _pack(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _pack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v) for v in value]
    return value


def _unpack(value: Any, device: torch.device) -> Any:
    if isinstance(value, dict) and "__ndarray__" in value:
        return value["__ndarray__"].numpy()
    if isinstance(value, dict) and "__type__" in value:
        fields = {k: _unpack(v, device) for k, v in value.items() if k != "__type__"}
        return _TYPES[value["__type__"]](**fields)
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _unpack(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, device) for v in value]
    return value


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically: the previous one stays whole until the new one is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {"version": CHECKPOINT_VERSION, "stages_done": checkpoint.stages_done, "state": _pack(checkpoint.state),
               "loss": _pack(checkpoint.loss), "photometric_rms": _pack(checkpoint.photometric_rms),
               "photometric_rms_per_camera": _pack(checkpoint.photometric_rms_per_camera),
               "fingerprint": checkpoint.fingerprint}
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, expected: dict[str, str], device: torch.device) -> Checkpoint:
    """The checkpoint at ``path``, for a fit whose :func:`fingerprint` is ``expected``.

    Raises:
        FacecapError: no checkpoint, an unreadable one, or one of a fit given something else (the message
            names what changed).
    """
    if not path.is_file():
        raise FacecapError(f"nothing to resume: no checkpoint at {path} (a fit writes one after its first stage)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise FacecapError(f"cannot read the checkpoint {path}: {err}") from err
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise FacecapError(f"{path} is not a facecap fit checkpoint of version {CHECKPOINT_VERSION}")
    saved = payload["fingerprint"]
    changed = [key for key in sorted(set(saved) | set(expected)) if saved.get(key) != expected.get(key)]
    if changed:
        shown = "; ".join(f"{key}: {saved.get(key, 'absent')} then, {expected.get(key, 'absent')} now"
                          if key.startswith("config") or key == "facecap" else f"{key} changed" for key in changed[:5])
        raise FacecapError(f"cannot resume from {path}: the fit is not the one that wrote it ({shown}"
                           f"{'; ...' if len(changed) > 5 else ''}). Start afresh without --resume")
    return Checkpoint(stages_done=int(payload["stages_done"]), state=_unpack(payload["state"], device),
                      loss=_unpack(payload["loss"], device),
                      photometric_rms=_unpack(payload["photometric_rms"], device),
                      photometric_rms_per_camera=_unpack(payload["photometric_rms_per_camera"], device),
                      fingerprint=saved)
