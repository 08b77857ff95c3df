"""The network on a take: crops, decoding and fusion against the take's ground truth; boxes from a pose."""

import dataclasses

import cv2
import numpy as np
import torch

from facecap.camera.model import load_calibration
from facecap.camera.torch_camera import CameraTensors
from facecap.fit.init import InitConfig, initialise_from_landmarks
from facecap.geometry.rotations import matrix_to_rotation_6d
from facecap.learn.crops import crop_cameras
from facecap.learn.geometry import encode_pose
from facecap.learn.infer import (
    FramePredictions,
    boxes_from_landmarks,
    boxes_from_pose,
    initialise_from_network,
    network_start,
    predict_frames,
)
from facecap.learn.model import NetOutput
from facecap.learn.modelfile import load_init_model
from facecap.rig.evaluate import evaluate_rig
from facecap.take.landmarks import Landmarks2D, load_landmarks
from facecap.take.reader import open_take


class _TruthNet(torch.nn.Module):
    """Stands in for the network: answers each view with the codes of the true pose in its crop camera."""

    def __init__(self, model, truth, landmarks, calibration, identity):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))            # gives the module a device
        boxes = boxes_from_landmarks(landmarks)
        T, C = boxes.found.shape
        cams = CameraTensors.from_calibration(calibration.in_units("mm"), dtype=torch.float64)
        crops = crop_cameras(cams.select([c for _ in range(T) for c in range(C)]), boxes.centre.reshape(-1, 2),
                             boxes.side.reshape(-1), model.config.crop_size, model.config.margin)
        R = torch.as_tensor(truth.R).repeat_interleave(C, 0)
        t = torch.as_tensor(truth.t).repeat_interleave(C, 0)
        rotation, code = encode_pose(crops, R, t, torch.as_tensor(model.reference), model.scale)
        self.rotation6d = matrix_to_rotation_6d(rotation).unflatten(0, (T, C)).float()
        self.position = code.unflatten(0, (T, C)).float()
        self.weights = torch.as_tensor(truth.weights, dtype=torch.float32)
        self.identity = torch.as_tensor(identity, dtype=torch.float32).expand(T, -1)

    def forward(self, crops, mask):
        assert crops.shape[:2] == self.position.shape[:2] and bool(mask.all())
        K = self.weights.shape[1]
        return NetOutput(self.rotation6d, self.position, self.weights, self.identity,
                         self.weights[:, None].expand(-1, crops.shape[1], K))


def test_the_fits_start_is_the_pose_the_views_codes_hold_in_the_takes_units(tiny_model, demo_take):
    """Crop cameras from the landmarks, decoding, fusion and units, end to end: a network that answers every
    view with the true codes gives the fit the take's true poses and weights, here in centimetres."""
    _, model_path, _ = tiny_model
    rig, take_path, truth = demo_take
    model = load_init_model(model_path)
    calibration = load_calibration(take_path / "calibration.json").in_units("cm")
    landmarks = load_landmarks(take_path / "landmarks.json")
    identity = np.linspace(-0.5, 0.5, rig.num_identities)
    model.net = _TruthNet(model, truth, landmarks, calibration, identity)
    with open_take(take_path, calibration) as take:
        init = initialise_from_network(model, take, landmarks.cameras(take.camera_names), take.calibration,
                                       rig.in_units("cm"))
    np.testing.assert_allclose(init.R, truth.R, atol=1e-5)
    np.testing.assert_allclose(init.t, truth.t / 10, atol=1e-4)
    np.testing.assert_allclose(init.weights, truth.weights, atol=1e-6)
    np.testing.assert_allclose(init.identity, identity, atol=1e-6)           # the model's own rig: kept
    assert init.frame_ok.all() and init.landmarks_3d.shape == (6, 68, 3) and init.valid.mean() > 0.8
    assert np.median(init.residual_mm) < 0.3                                    # cm: landmark noise of 1 px


def test_boxes_from_the_true_pose_are_the_true_landmarks_boxes(tiny_model, demo_take):
    _, model_path, _ = tiny_model
    rig, take_path, truth = demo_take
    model = load_init_model(model_path)
    calibration = load_calibration(take_path / "calibration.json")
    world = evaluate_rig(rig.in_units("mm"), truth.weights, None, truth.R, truth.t, vertices=rig.landmark_vertices)
    pixels = np.stack([np.stack([cv2.projectPoints(X, cv2.Rodrigues(c.R)[0], c.t, c.K, c.dist)[0][:, 0]
                                 for c in calibration.cameras]) for X in world])
    truth_boxes = boxes_from_landmarks(Landmarks2D(pixels, np.ones(pixels.shape[:3]), tuple(calibration.names)))
    predictions_ok = np.ones(truth.num_frames, dtype=bool)
    boxes = boxes_from_pose(model, FramePredictions(truth.weights, np.zeros((6, rig.num_identities)), truth.R,
                                                    truth.t, predictions_ok), calibration)
    assert boxes.found.all()
    np.testing.assert_allclose(boxes.centre, truth_boxes.centre, atol=1e-4)
    np.testing.assert_allclose(boxes.side, truth_boxes.side, atol=1e-4)
    lost = boxes_from_pose(model, FramePredictions(truth.weights, np.zeros((6, rig.num_identities)), truth.R,
                                                   truth.t + np.array([5000.0, 0, 0]), predictions_ok), calibration)
    assert not lost.found.any()                                                 # the head left every view


def test_tiny_model_gives_a_start_of_the_right_form_and_flags_frames_without_views(tiny_model, demo_take):
    _, model_path, _ = tiny_model
    rig, take_path, _ = demo_take
    model = load_init_model(model_path)
    landmarks = load_landmarks(take_path / "landmarks.json")
    confidence = landmarks.confidence.copy()
    confidence[3] = 0.0
    with open_take(take_path, load_calibration(take_path / "calibration.json")) as take:
        init = initialise_from_network(model, take, dataclasses.replace(landmarks, confidence=confidence),
                                       take.calibration, rig, batch_frames=4)
        images = [[take.frame_raw(c, 0) for c in range(3)]]
        single = predict_frames(model, images, take.calibration, boxes_from_landmarks(landmarks, np.array([0])))
    assert init.weights.shape == (6, rig.num_shapes) and init.weights.min() >= 0 and init.weights.max() <= 1
    assert init.identity.shape == (rig.num_identities,)
    np.testing.assert_allclose(init.R @ init.R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (6, 3, 3)), atol=1e-6)
    assert init.frame_ok.tolist() == [True, True, True, False, True, True]
    np.testing.assert_allclose(init.t[3], (init.t[2] + init.t[4]) / 2)       # interpolated
    np.testing.assert_allclose(single.weights[0], init.weights[0], atol=1e-5)  # batches do not change answers


def test_the_fits_network_start_takes_the_pose_that_meets_the_landmarks(tiny_model, demo_take):
    """The network answers the true weights, and the true pose but for frames 0-2, which it places 3 cm off;
    the landmark start is 3 cm off on frames 3-5. The start keeps the network's weights everywhere, its pose
    on frames 3-5 and the landmark start's on frames 0-2."""
    _, model_path, _ = tiny_model
    rig, take_path, truth = demo_take
    model = load_init_model(model_path)
    calibration = load_calibration(take_path / "calibration.json")
    rig = rig.in_units(calibration.units)
    landmarks = load_landmarks(take_path / "landmarks.json")
    shift = np.array([30.0, 0.0, 0.0])                                          # mm
    off = truth.t.copy()
    off[:3] += shift
    model.net = _TruthNet(model, dataclasses.replace(truth, t=off), landmarks, calibration,
                          np.zeros(rig.num_identities))
    with open_take(take_path, calibration) as take:
        lm = landmarks.cameras(take.camera_names)
        landmark_start = initialise_from_landmarks(lm, take.calibration, rig, InitConfig(fit_identity=False))
        landmark_t = landmark_start.t.copy()
        landmark_t[3:] += shift
        landmark_start = dataclasses.replace(landmark_start, t=landmark_t)
        start = network_start(model, take, lm, take.calibration, rig, landmark_start)
    np.testing.assert_allclose(start.weights, truth.weights, atol=1e-6)
    np.testing.assert_allclose(start.R[:3], landmark_start.R[:3])
    np.testing.assert_allclose(start.t[:3], landmark_start.t[:3])
    np.testing.assert_allclose(start.R[3:], truth.R[3:], atol=1e-5)
    np.testing.assert_allclose(start.t[3:], truth.t[3:], atol=1e-3)
    assert start.frame_ok.all() and np.median(start.residual_mm) < 3.0          # mm: landmark noise of 1 px
