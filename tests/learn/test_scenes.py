"""Training scenes: expression partners, sparse weights, cameras around the face's front."""

import numpy as np

from facecap.learn.config import DataConfig
from facecap.learn.scenes import partner_shapes, random_scene_geometry, random_weights

ARKIT = ("eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R", "jawOpen",
         "mouthSmile_L", "mouthSmile_R", "mouthLeft", "mouthRight")


def test_partners_are_mirrors_and_gaze_partners_turn_the_other_eye_the_same_way():
    partners = dict(zip(ARKIT, [ARKIT[p] if p >= 0 else None for p in partner_shapes(ARKIT)]))
    assert partners["mouthSmile_L"] == "mouthSmile_R" and partners["mouthSmile_R"] == "mouthSmile_L"
    assert partners["eyeLookUp_L"] == "eyeLookUp_R"
    assert partners["eyeLookIn_L"] == "eyeLookOut_R" and partners["eyeLookOut_R"] == "eyeLookIn_L"
    assert partners["eyeLookOut_L"] == "eyeLookIn_R"
    assert partners["jawOpen"] is None and partners["mouthLeft"] is None


def test_weights_are_sparse_bounded_and_mostly_symmetric(rng):
    partners = partner_shapes(ARKIT)
    config = DataConfig(actions=2.0, neutral_fraction=0.1)
    W = np.stack([random_weights(partners, config, rng) for _ in range(3000)])
    assert W.min() >= 0 and W.max() <= 1
    active = (W > 0).sum(1)
    assert 0.06 < (active == 0).mean() < 0.14                     # the neutral scenes
    assert 2.0 < active[active > 0].mean() < 5.0                  # a few shapes at a time, with partners
    smile = W[:, [ARKIT.index("mouthSmile_L"), ARKIT.index("mouthSmile_R")]]
    both = (smile > 0).all(1).sum() / max((smile > 0).any(1).sum(), 1)
    assert both > 0.6                                             # a smile is mostly on both sides


def test_cameras_stand_in_front_of_the_face_within_the_limits(rng):
    config = DataConfig(views=4, yaw_deg=60.0, pitch_deg=25.0)
    reference = np.array([0.0, 20.0, 90.0])
    for _ in range(50):
        g = random_scene_geometry(reference, config, rng)
        head = g.R @ reference + g.t
        for R, centre in zip(g.camera_R, g.camera_centre):
            to_camera = g.R.T @ (centre - head)                      # in the head frame: +z is the face's front
            yaw = np.degrees(np.arctan2(to_camera[0], to_camera[2]))
            pitch = np.degrees(np.arcsin(to_camera[1] / np.linalg.norm(to_camera)))
            assert abs(yaw) <= 60.0 + 1e-6 and abs(pitch) <= 25.0 + 1e-6
            assert config.distance_mm[0] <= np.linalg.norm(to_camera) <= config.distance_mm[1]
            in_camera = R @ (head - centre)
            assert in_camera[2] > 0 and np.linalg.norm(in_camera[:2]) / in_camera[2] < 0.1   # it looks at the head
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
