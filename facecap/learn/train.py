"""``train_init_model``: render scenes of a rig and train the network on them.

The scenes are rendered once into the work folder (:mod:`facecap.learn.dataset`). Training runs AdamW
with a one-cycle learning rate over the epochs, each batch cut and augmented afresh
(:mod:`facecap.learn.batches`). After every epoch the held-out scenes are scored (weight and identity MAE,
and the fused head pose's errors, :mod:`facecap.learn.geometry`), a checkpoint is written to the work
folder (a rerun with the same settings resumes from it) and the validation curves are drawn to its
``validation.png``, to watch while training runs. The caller publishes the model and the final curves
(:func:`facecap.learn.modelfile.save_init_model`, :func:`plot_curves`).
"""

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from facecap.config import config_to_dict
from facecap.fit.pipeline import resolve_device
from facecap.geometry.rotations import rotation_6d_to_matrix
from facecap.learn.batches import Batch, make_batch
from facecap.learn.config import TrainInitConfig
from facecap.learn.dataset import SceneSet, generate_scenes, rig_fingerprint
from facecap.learn.geometry import decode_views, fuse_views
from facecap.learn.model import InitNet, NetOutput
from facecap.learn.modelfile import InitModel, landmark_rig
from facecap.progress import progress
from facecap.rig.model import Rig

__all__ = ["TrainResult", "train_init_model", "training_loss", "head_reference", "plot_curves"]

log = logging.getLogger(__name__)

VIEW_GUESS_WEIGHT = 0.25      # each view's own weights guess, beside the pooled one: every view must learn
WEIGHT_KNEE = 0.1             # weight errors above this are penalised more than linearly (see _reverse_huber)
IDENTITY_KNEE = 1.0           # the same for identity coefficients (σ = 1 modes)
VALIDATION_SEED = 12345       # the validation batches' augmentation, the same every epoch


@dataclass
class TrainResult:
    """The trained model (on the CPU, eval mode), how training went (one dict of figures per epoch) and its
    wall time in seconds (rendering the scenes included)."""

    model: InitModel
    history: list[dict[str, float]]
    seconds: float


def head_reference(rig: Rig) -> tuple[np.ndarray, float]:
    """([3] the neutral landmarks' centre, the head's size: their box's larger side), in mm."""
    points = rig.in_units("mm").neutral[np.asarray(rig.landmark_vertices)]
    return points.mean(0), float((points.max(0) - points.min(0))[:2].max())


def _reverse_huber(error: torch.Tensor, knee: float) -> torch.Tensor:
    """|e| + e² / (2 knee), elementwise: L1 near zero, where it holds the many inactive weights at exactly 0 (the
    MAE's optimum is the median), and quadratic for large errors, so that a missed expression pulls harder than
    the slight overshoots of every inactive shape together (plain L1 learns to predict all zeros first)."""
    return error.abs() + error * error / (2 * knee)


def training_loss(out: NetOutput, batch: Batch, config: TrainInitConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the weights', identity's and each view's pose losses, and the terms."""
    train = config.train
    mask = batch.mask.to(out.weights.device).float()
    views = mask.sum().clamp_min(1)

    def target(x: torch.Tensor) -> torch.Tensor:
        return x.to(out.weights.device)
    weights = _reverse_huber(out.weights - target(batch.weights), WEIGHT_KNEE).mean()
    view_weights = (_reverse_huber(out.view_weights - target(batch.weights)[:, None], WEIGHT_KNEE).mean(-1) * mask
                    ).sum() / views
    identity = _reverse_huber(out.identity - target(batch.identity), IDENTITY_KNEE).mean() \
        if out.identity.shape[1] else weights * 0
    rotation = ((rotation_6d_to_matrix(out.rotation6d) - target(batch.rotation)).flatten(2).norm(dim=-1) * mask).sum() \
        / views
    position = ((out.position - target(batch.code)).abs().sum(-1) * mask).sum() / views
    total = train.weight_loss * (weights + VIEW_GUESS_WEIGHT * view_weights) + train.identity_loss * identity \
        + train.pose_loss * (rotation + position)
    terms = {"loss": total.item(), "weights": weights.item(), "identity": identity.item(),
             "rotation_chordal": rotation.item(), "position_l1": position.item()}
    return total, terms


@torch.no_grad()
def _validate(net: InitNet, scenes: SceneSet, config: TrainInitConfig, reference: torch.Tensor, scale: float,
              device: torch.device) -> dict[str, float]:
    """Mean losses and the fused pose's errors over the validation scenes."""
    net.eval()
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    totals: dict[str, float] = {}
    count = 0
    for start in range(0, len(scenes), config.train.batch):
        indices = np.arange(start, min(start + config.train.batch, len(scenes)))
        batch = make_batch(scenes, indices, config.model, config.train, config.data.canvas_factor, reference, scale,
                           generator)
        out = net(batch.crops.to(device), batch.mask.to(device))
        _, terms = training_loss(out, batch, config)
        B, V = batch.mask.shape
        R_views, point, ray = decode_views(batch.cameras, rotation_6d_to_matrix(out.rotation6d.cpu()).flatten(0, 1),
                                           out.position.cpu().flatten(0, 1), scale)
        R, X = fuse_views(R_views.unflatten(0, (B, V)), point.unflatten(0, (B, V)), ray.unflatten(0, (B, V)),
                          batch.cameras.centre.unflatten(0, (B, V)), batch.mask)
        true_X = batch.R @ reference + batch.t
        cos = ((R * batch.R).sum((1, 2)) - 1) / 2
        terms["weight_mae"] = (out.weights.cpu().clamp(0, 1) - batch.weights).abs().mean().item()
        terms["identity_mae"] = (out.identity.cpu() - batch.identity).abs().mean().item() \
            if batch.identity.shape[1] else 0.0
        terms["rotation_deg"] = torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).mean().item()
        terms["position_mm"] = (X - true_X).norm(dim=-1).mean().item()
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + value * len(indices)
        count += len(indices)
    net.train()
    return {key: value / count for key, value in totals.items()}


def plot_curves(history: list[dict[str, float]], path: Path) -> Path:
    """Training and validation loss, validation weight MAE and fused pose errors per epoch, as a PNG written
    whole (a temporary file renamed into place); returns ``path``."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(16, 3.6))
    axes = fig.subplots(1, 4)
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="training")
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation")
    axes[0].set_ylabel("loss")
    axes[0].set_yscale("log")
    axes[1].plot(epochs, [h["val_weight_mae"] for h in history], label="weights")
    axes[1].set_ylabel("validation weight MAE")
    axes[2].plot(epochs, [h["val_identity_mae"] for h in history], label="identity")
    axes[2].set_ylabel("validation identity MAE")
    axes[3].plot(epochs, [h["val_rotation_deg"] for h in history], label="rotation (deg)")
    axes[3].plot(epochs, [h["val_position_mm"] for h in history], label="reference point (mm)")
    axes[3].set_ylabel("fused head pose error (validation)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path


def _run_key(rig: Rig, config: TrainInitConfig) -> str:
    """What a checkpoint must match to be resumed: the rig and every setting."""
    key = json.dumps({"rig": rig_fingerprint(rig), "config": config_to_dict(config)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def train_init_model(rig: Rig, config: TrainInitConfig, work: str | Path) -> TrainResult:
    """Train the initialiser for ``rig``.

    Args:
        rig: the rig whose weights the network predicts (Multi-PIE 68 landmarks needed for the crops).
        config: scenes, network and training settings.
        work: the folder of the cached scenes, the checkpoint, ``validation.png`` and ``history.json``, kept
            across runs: a run with the same rig and settings reuses the scenes and resumes the checkpoint.
    """
    started = time.perf_counter()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    train = config.train
    if train.threads:
        torch.set_num_threads(train.threads)
    device = resolve_device(train.device)
    folder = generate_scenes(rig, config.data, config.model, work, device)
    scenes, validation = SceneSet.open(folder, "train", config.data), SceneSet.open(folder, "validation", config.data)
    reference_np, scale = head_reference(rig)
    reference = torch.as_tensor(reference_np, dtype=torch.float32)
    net = InitNet(config.model, rig.num_shapes, rig.num_identities).to(device)
    steps = math.ceil(len(scenes) / train.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=train.learning_rate, weight_decay=train.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=train.learning_rate,
                                                   total_steps=train.epochs * steps)
    checkpoint_path, history, first = work / "checkpoint.pt", [], 0
    key = _run_key(rig, config)
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if state.get("key") == key:
            net.load_state_dict(state["net"])
            optimiser.load_state_dict(state["optimiser"])
            schedule.load_state_dict(state["schedule"])
            history, first = json.loads(state["history"]), int(state["epoch"])
            log.info("resuming from %s after epoch %d", checkpoint_path, first)
        else:
            log.info("%s is from other settings or another rig: training from the start", checkpoint_path)
    curve = work / "validation.png"
    with progress((train.epochs - first) * steps, "train", "batch") as bar:
        for epoch in range(first, train.epochs):
            order = np.random.default_rng([config.data.seed, epoch]).permutation(len(scenes))
            generator = torch.Generator().manual_seed(config.data.seed * 100003 + epoch)
            losses = []
            for start in range(0, len(scenes), train.batch):
                batch = make_batch(scenes, order[start:start + train.batch], config.model, train,
                                   config.data.canvas_factor, reference, scale, generator)
                loss, _ = training_loss(net(batch.crops.to(device), batch.mask.to(device)), batch, config)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
                bar.update(1)
            scores = _validate(net, validation, config, reference, scale, device)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                            **{f"val_{k}": v for k, v in scores.items()}})
            log.info("epoch %d/%d: loss %.4f, validation loss %.4f, weight MAE %.4f, rotation %.2f deg, "
                     "position %.1f mm", epoch + 1, train.epochs, history[-1]["train_loss"], scores["loss"],
                     scores["weight_mae"], scores["rotation_deg"], scores["position_mm"])
            tmp = checkpoint_path.with_name(checkpoint_path.name + ".tmp")
            torch.save({"key": key, "epoch": epoch + 1, "net": net.state_dict(), "optimiser": optimiser.state_dict(),
                        "schedule": schedule.state_dict(), "history": json.dumps(history)}, tmp)
            os.replace(tmp, checkpoint_path)
            plot_curves(history, curve)
            (work / "history.json").write_text(json.dumps(history, indent=1))
    model = InitModel(net=net.cpu().eval(), config=config.model, landmarks=landmark_rig(rig), reference=reference_np,
                      scale=scale, rig_fingerprint=rig_fingerprint(rig))
    return TrainResult(model=model, history=history, seconds=time.perf_counter() - started)
