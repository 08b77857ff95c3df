"""The trained initialiser as a file: the network's weights and everything needed to use it without the rig.

``init_model.pt`` is a ``torch.save`` of plain data (read back with ``weights_only=True``, so loading runs
no code): the format tag, the model settings, the rig's shape names and fingerprint, the head reference
point and size the pose codes use (mm), the rig's landmark vertices as a small rig of their own (to place
crops by projecting the head the network found), and the network's state dict.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facecap.config import config_to_dict
from facecap.errors import FormatError
from facecap.learn.config import ModelConfig
from facecap.learn.model import InitNet
from facecap.rig.model import Rig

__all__ = ["InitModel", "save_init_model", "load_init_model", "landmark_rig", "MODEL_FORMAT"]

log = logging.getLogger(__name__)

MODEL_FORMAT = "facecap-init-model"
MODEL_VERSION = 1


def landmark_rig(rig: Rig) -> Rig:
    """The rig's landmark vertices alone, in mm, as a rig (no triangles; landmark l is vertex l)."""
    lm = np.asarray(rig.landmark_vertices)
    small = rig.in_units("mm")
    return Rig(units="mm", neutral=small.neutral[lm], faces=np.zeros((0, 3), dtype=np.int32),
               shape_names=small.shape_names, shape_deltas=small.shape_deltas[:, lm],
               corrective_keys=small.corrective_keys, corrective_deltas=small.corrective_deltas[:, lm],
               identity_deltas=small.identity_deltas[:, lm], landmark_scheme=small.landmark_scheme,
               landmark_vertices=np.arange(len(lm), dtype=np.int32))


@dataclass
class InitModel:
    """A trained initialiser.

    Attributes:
        net: the network (eval mode; loaded, its BatchNorms folded into the convolutions).
        config: its settings (crop size, margin, widths).
        landmarks: the rig's landmark vertices as a rig of their own (mm).
        reference: [3] head-frame reference point, mm; scale: the head's size the pose codes use, mm.
        rig_fingerprint: :func:`facecap.learn.dataset.rig_fingerprint` of the rig it was trained on.
    """

    net: InitNet
    config: ModelConfig
    landmarks: Rig
    reference: np.ndarray
    scale: float
    rig_fingerprint: str

    @property
    def shape_names(self) -> tuple[str, ...]:
        return self.landmarks.shape_names

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


def save_init_model(model: InitModel, path: Path) -> None:
    """Write ``path`` whole (a temporary file renamed into place)."""
    lm = model.landmarks
    data = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "config": config_to_dict(model.config),
            "rig_fingerprint": model.rig_fingerprint, "reference": torch.as_tensor(model.reference),
            "scale": float(model.scale), "shape_names": list(lm.shape_names),
            "landmark_scheme": lm.landmark_scheme,
            "landmarks": {name: torch.as_tensor(getattr(lm, name)) for name in
                          ("neutral", "shape_deltas", "corrective_keys", "corrective_deltas", "identity_deltas")},
            "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def load_init_model(path: str | Path, device: str | torch.device = "cpu") -> InitModel:
    """Read a model written by :func:`save_init_model`; a file of another kind is a FormatError."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"init model not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:           # torch raises several types for a file that is not a checkpoint
        raise FormatError(f"{path}: not a facecap init model ({err})") from err
    found = data.get("format") if isinstance(data, dict) else None
    if found != MODEL_FORMAT:
        raise FormatError(f"{path}: not a facecap init model (format {found!r})")
    if data.get("version") != MODEL_VERSION:
        raise FormatError(f"{path}: init model version {data.get('version')} (this facecap reads {MODEL_VERSION})")
    try:
        config = ModelConfig(**data["config"])
    except (TypeError, KeyError) as err:
        raise FormatError(f"{path}: the model settings do not read ({err})") from err
    arrays = {k: v.numpy() for k, v in data["landmarks"].items()}
    L = len(arrays["neutral"])
    landmarks = Rig(units="mm", faces=np.zeros((0, 3), dtype=np.int32), shape_names=tuple(data["shape_names"]),
                    landmark_scheme=data["landmark_scheme"], landmark_vertices=np.arange(L, dtype=np.int32), **arrays)
    net = InitNet(config, landmarks.num_shapes, landmarks.num_identities)
    net.load_state_dict(data["state_dict"])
    net.fuse_batchnorm().to(device)
    return InitModel(net=net, config=config, landmarks=landmarks, reference=data["reference"].numpy(),
                     scale=float(data["scale"]), rig_fingerprint=data["rig_fingerprint"])
