"""The trained network on a take's frames: per-frame weights, identity and head pose, and the fit's start.

:func:`predict_frames` cuts each view's crop from its box (:mod:`facecap.learn.crops`), runs the network
on all views of a batch of frames at once, and fuses the views' poses (:mod:`facecap.learn.geometry`).
:func:`initialise_from_network` does that over a whole take, with the boxes of its landmarks, and returns
what :func:`facecap.fit.init.initialise_from_landmarks` returns, so the fit can start from either;
:func:`network_start` is the fit's start with ``init.model``: the network's weights, each frame with the
head pose (the network's or the landmark start's) that lies closer to the triangulated landmarks.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

from facecap.camera.model import Calibration
from facecap.camera.torch_camera import CameraTensors, project_points
from facecap.camera.triangulate import triangulate_points
from facecap.checks import check_shape
from facecap.errors import FacecapError
from facecap.fit.init import Initialisation, interpolate_missing_frames
from facecap.geometry.rotations import rotation_6d_to_matrix
from facecap.learn.crops import CropCameras, crop_cameras, cut_crops, landmark_box
from facecap.learn.geometry import decode_views, fuse_views
from facecap.learn.modelfile import InitModel, landmark_rig
from facecap.progress import track
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D, as_uint8
from facecap.take.reader import Take
from facecap.units import unit_scale

__all__ = ["Boxes", "FramePredictions", "predict_frames", "boxes_from_landmarks", "boxes_from_pose",
           "initialise_from_network", "network_start", "rig_identity_matches"]

log = logging.getLogger(__name__)

MIN_BOX_INSIDE = 0.5        # a projected box with less of its side inside the image is no view of the face
IDENTITY_MATCH_MM = 1e-3    # landmark identity modes this close are the same rig's


@dataclass(frozen=True)
class Boxes:
    """The face's box in each view of T frames: centre [T, C, 2] px, side [T, C] px, found [T, C] bool."""

    centre: np.ndarray
    side: np.ndarray
    found: np.ndarray


@dataclass(frozen=True)
class FramePredictions:
    """The network's answer for T frames, in the calibration's units.

    Attributes:
        weights: [T, K] in [0, 1], the model's shape order. identity: [T, I].
        R: [T, 3, 3], t: [T, 3] head-to-world pose. ok: [T] False where no view had a box (the rest is
        then meaningless).
    """

    weights: np.ndarray
    identity: np.ndarray
    R: np.ndarray
    t: np.ndarray
    ok: np.ndarray


def boxes_from_landmarks(landmarks: Landmarks2D, frames: np.ndarray | None = None) -> Boxes:
    """The boxes of the confident landmarks of ``frames`` (default all)."""
    rows = slice(None) if frames is None else np.asarray(frames)
    return Boxes(*landmark_box(landmarks.points[rows], landmarks.confidence[rows]))


def boxes_from_pose(model: InitModel, predictions: FramePredictions, calibration: Calibration) -> Boxes:
    """The boxes of the rig's landmarks posed as ``predictions`` say, projected into every camera; a view
    whose box lies mostly outside its image, or whose head is behind it, has none."""
    s = unit_scale(calibration.units, "mm")
    points = evaluate_rig(model.landmarks, predictions.weights, predictions.identity, predictions.R,
                          predictions.t * s)                                                  # [T, L, 3] mm
    cams = CameraTensors.from_calibration(calibration.in_units("mm"), dtype=torch.float64)
    pixels = project_points(torch.as_tensor(points), cams).numpy()                           # [T, C, L, 2]
    depth = np.einsum("cij,tlj->tcli", cams.R.numpy(), points)[..., 2] + cams.t.numpy()[None, :, None, 2]
    centre, side, found = landmark_box(pixels, (depth > 0).astype(np.float64))
    size = cams.image_sizes.numpy().astype(np.float64)                                        # [C, 2]
    lo, hi = np.maximum(centre - side[..., None] / 2, -0.5), np.minimum(centre + side[..., None] / 2, size - 0.5)
    inside = np.clip(hi - lo, 0, None).min(-1) / np.maximum(side, 1e-9)
    return Boxes(centre, side, found & predictions.ok[:, None] & (inside >= MIN_BOX_INSIDE))


def _crop_cameras(model: InitModel, cams: CameraTensors, boxes: Boxes) -> CropCameras:
    """The [T * C] crop cameras of the boxes (views without one get a stand-in, to be masked)."""
    T, C = boxes.found.shape
    size = cams.image_sizes.numpy().astype(np.float64)
    centre = np.where(boxes.found[..., None], boxes.centre, (size - 1) / 2)
    side = np.where(boxes.found, boxes.side, size[:, 1])
    repeated = cams.select([c for _ in range(T) for c in range(C)])
    return crop_cameras(repeated, centre.reshape(-1, 2), side.reshape(-1), model.config.crop_size, model.config.margin)


@torch.no_grad()
def predict_frames(model: InitModel, images: list[list[np.ndarray]], calibration: Calibration,
                   boxes: Boxes) -> FramePredictions:
    """The network's weights, identity and head pose of T frames.

    Args:
        model: the trained initialiser.
        images: T lists of the C views' frames, [H, W, 3] 8-bit RGB (any stored dtype is converted).
        calibration: the C cameras, any units (the result is in them).
        boxes: each view's face box (:func:`boxes_from_landmarks`, :func:`boxes_from_pose`).
    """
    T, C = boxes.found.shape
    if len(images) != T or any(len(views) != C for views in images):
        raise FacecapError(f"predict_frames: {T} frames of {C} views expected, got "
                           f"{[len(v) for v in images]}")
    cams = CameraTensors.from_calibration(calibration.in_units("mm"), dtype=torch.float64)
    crops_cams = _crop_cameras(model, cams, boxes)
    repeated = cams.select([c for _ in range(T) for c in range(C)])
    found = boxes.found.reshape(-1)
    crops = np.zeros((T * C, model.config.crop_size, model.config.crop_size, 3), dtype=np.uint8)
    index = np.flatnonzero(found)
    if len(index):
        crops[index] = cut_crops([as_uint8(images[i // C][i % C]) for i in index], crops_cams.select(index),
                                 repeated.select(list(index)))
    mask = torch.as_tensor(boxes.found)
    x = torch.from_numpy(crops).to(model.device).permute(0, 3, 1, 2).float().div_(255).unflatten(0, (T, C))
    out = model.net(x, mask.to(model.device))
    R_views, point, ray = decode_views(crops_cams, rotation_6d_to_matrix(out.rotation6d.cpu().double()).flatten(0, 1),
                                       out.position.cpu().double().flatten(0, 1), model.scale)
    ok = boxes.found.any(1)
    safe = mask | torch.as_tensor(~ok)[:, None]          # frames without views fuse a stand-in, flagged by ok
    R, X = fuse_views(R_views.unflatten(0, (T, C)), point.unflatten(0, (T, C)), ray.unflatten(0, (T, C)),
                      crops_cams.centre.unflatten(0, (T, C)), safe)
    t = X - R @ torch.as_tensor(model.reference, dtype=torch.float64)
    return FramePredictions(weights=out.weights.cpu().double().clamp(0, 1).numpy(),
                            identity=out.identity.cpu().double().numpy(), R=R.numpy(),
                            t=t.numpy() * unit_scale("mm", calibration.units), ok=ok)


def rig_identity_matches(model: InitModel, rig: Rig) -> bool:
    """Whether ``rig``'s identity modes are the ones the model was trained with (at the landmarks)."""
    if rig.landmark_vertices is None or rig.num_identities != model.landmarks.num_identities:
        return False
    return bool(np.allclose(landmark_rig(rig).identity_deltas, model.landmarks.identity_deltas,
                            atol=IDENTITY_MATCH_MM))


def _to_rig_order(model: InitModel, rig: Rig, weights: np.ndarray) -> np.ndarray:
    """[T, K_rig] weights by shape name; the rig's shapes must be the model's."""
    if set(rig.shape_names) != set(model.shape_names):
        missing = sorted(set(rig.shape_names) ^ set(model.shape_names))
        raise FacecapError(f"the init model was trained for other shapes than the rig's (differing: "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return weights[:, [model.shape_names.index(n) for n in rig.shape_names]]


def _landmark_residual(rig: Rig, weights: np.ndarray, identity: np.ndarray, R: np.ndarray, t: np.ndarray,
                       X: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[T] RMS distance of the posed rig's landmarks to the [T, L, 3] triangulated ones where ``valid``."""
    posed = evaluate_rig(rig, weights, identity, R, t, vertices=np.asarray(rig.landmark_vertices))
    err = np.where(valid, np.linalg.norm(posed - np.nan_to_num(X), axis=-1), 0.0)
    return np.sqrt((err ** 2).sum(1) / np.maximum(valid.sum(1), 1))


def initialise_from_network(model: InitModel, take: Take, landmarks: Landmarks2D, calibration: Calibration,
                            rig: Rig, batch_frames: int = 8, identity: np.ndarray | None = None) -> Initialisation:
    """Every frame's start from the network, with crops from the landmarks' boxes.

    Args:
        model: the trained initialiser. take: the open take (its cameras in ``calibration``'s order).
        landmarks: [T] frames of the take's cameras, as for :func:`facecap.fit.init.initialise_from_landmarks`.
        calibration: the cameras, in the units the result is wanted in.
        rig: the rig the fit tracks with, in the calibration's units: its shape names order the weights;
            the network's identity is used when the rig's identity modes are the model's.
        batch_frames: frames per network call.
        identity: [I] the identity where the rig's identity modes are not the model's (default zeros).
    Returns:
        Initialisation: weights, pose and identity from the network; the triangulated landmarks as
        :func:`initialise_from_landmarks` gives them; frames without any box interpolated and flagged.
    """
    check_shape(landmarks.points, f"{take.num_frames} {len(take.camera_names)} L 2", "landmarks.points")
    T = take.num_frames
    parts = []
    for start in track(range(0, T, batch_frames), "network init", "batch"):
        frames = np.arange(start, min(start + batch_frames, T))
        images = [[take.frame_raw(c, int(i)) for c in range(len(take.camera_names))] for i in frames]
        parts.append(predict_frames(model, images, calibration, boxes_from_landmarks(landmarks, frames)))
    ok = np.concatenate([p.ok for p in parts])
    weights = _to_rig_order(model, rig, np.concatenate([p.weights for p in parts]))
    identity_per_frame = np.concatenate([p.identity for p in parts])
    if rig_identity_matches(model, rig) and ok.any():
        identity = identity_per_frame[ok].mean(0)
    elif identity is None:
        identity = np.zeros(rig.num_identities)
    weights, R, t = interpolate_missing_frames(ok, weights, np.concatenate([p.R for p in parts]),
                                               np.concatenate([p.t for p in parts]))
    X, valid, _ = triangulate_points(landmarks.points, landmarks.confidence, calibration)
    residual = _landmark_residual(rig, weights, identity, R, t, X, valid)
    log.info("network init: %d/%d frames with a view of the face, RMS landmark residual %.2f %s (median frame)",
             ok.sum(), T, float(np.median(residual)), calibration.units)
    return Initialisation(weights=weights, R=R, t=t, identity=identity,
                          landmarks_3d=np.where(valid[..., None], X, np.nan), valid=valid, frame_ok=ok,
                          residual_mm=residual)


def network_start(model: InitModel, take: Take, landmarks: Landmarks2D, calibration: Calibration, rig: Rig,
                  landmark_start: Initialisation) -> Initialisation:
    """The fit's start with the model of config key ``init.model``.

    Every frame takes the network's weights (and its identity where the rig's identity modes are the model's,
    else the landmark start's), with the network's head pose or the landmark start's, whichever puts the
    rig's landmarks closer to the triangulated ones. A frame the network saw in no view keeps the landmark
    start whole. Arguments as for :func:`initialise_from_network`; ``landmark_start`` is
    :func:`facecap.fit.init.initialise_from_landmarks`'s answer for the same frames.
    """
    net = initialise_from_network(model, take, landmarks, calibration, rig, identity=landmark_start.identity)
    X, valid = np.nan_to_num(net.landmarks_3d), net.valid
    with_landmark_pose = _landmark_residual(rig, net.weights, net.identity, landmark_start.R, landmark_start.t, X,
                                            valid)
    landmark_pose = (with_landmark_pose < net.residual_mm) & landmark_start.frame_ok
    unseen = ~net.frame_ok & landmark_start.frame_ok
    pose_from_landmarks = landmark_pose | unseen
    weights = np.where(unseen[:, None], landmark_start.weights, net.weights)
    R = np.where(pose_from_landmarks[:, None, None], landmark_start.R, net.R)
    t = np.where(pose_from_landmarks[:, None], landmark_start.t, net.t)
    residual = _landmark_residual(rig, weights, net.identity, R, t, X, valid)
    log.info("network start: the landmark start's head pose on %d of %d frames (closer to the triangulated "
             "landmarks), the landmark start whole on %d frames the network saw in no view; RMS landmark residual "
             "%.2f %s (median frame)", int(landmark_pose.sum()), len(weights), int(unseen.sum()),
             float(np.median(residual)), calibration.units)
    return replace(net, weights=weights, R=R, t=t, frame_ok=net.frame_ok | landmark_start.frame_ok,
                   residual_mm=residual)
