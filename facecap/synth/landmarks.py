"""Landmarks of a synthetic take: the true landmark vertices projected, plus detector-like noise.

A fresh machine has no MediaPipe model, so the demo stands in for the detector with these:
``cv2.projectPoints``-exact positions of the rig's landmark vertices (lens distortion included),
perturbed by Gaussian noise of a chosen size, and marked visible when the vertex faces the camera.
"""

import numpy as np
import torch

from facecap.animation import Animation
from facecap.camera.model import Calibration
from facecap.camera.torch_camera import CameraTensors, project_points, world_to_camera
from facecap.render.shading import vertex_normals
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D
from facecap.units import unit_scale

__all__ = ["synthetic_landmarks"]

MIN_FACING_COSINE = 0.0  # a landmark on a surface turned away from the camera is not visible


def synthetic_landmarks(rig: Rig, calibration: Calibration, animation: Animation, noise_px: float,
                        rng: np.random.Generator, identity: np.ndarray | None = None) -> Landmarks2D:
    """[T, C, L, 2] projections of ``rig.landmark_vertices`` posed by ``animation``, with noise.

    Args:
        rig: the rig the take was rendered from; animation: its ground truth (same shape names).
        calibration: the take's cameras; noise_px: standard deviation of the added noise, pixels.
        rng: numpy Generator for the noise; identity: [I] performer identity, or None.
    """
    world = rig.in_units(calibration.units)
    order = [rig.shape_index(n) for n in animation.shape_names]
    weights = np.zeros((animation.num_frames, rig.num_shapes))
    weights[:, order] = animation.weights
    t = animation.t * unit_scale(animation.units, calibration.units)
    verts = evaluate_rig(world, weights, identity, animation.R, t)
    cams = CameraTensors.from_calibration(calibration, dtype=torch.float64)
    lm = np.asarray(rig.landmark_vertices)
    X = torch.as_tensor(verts[:, lm])
    normals = vertex_normals(torch.as_tensor(verts), torch.as_tensor(rig.faces).long())[:, lm]
    points = project_points(X, cams).numpy()
    to_cam = -world_to_camera(X, cams)
    n_cam = torch.einsum("cij,bnj->bcni", cams.R, normals)
    facing = ((n_cam * torch.nn.functional.normalize(to_cam, dim=-1)).sum(-1) > MIN_FACING_COSINE).numpy()
    points = points + rng.normal(scale=noise_px, size=points.shape)
    return Landmarks2D(points=np.where(facing[..., None], points, 0.0), confidence=facing.astype(np.float64),
                       camera_names=tuple(calibration.names), scheme=rig.landmark_scheme)
