"""Rendered scenes: the face fills the canvas where its camera says, and the cache resumes and extends."""

import dataclasses

import numpy as np
import torch

from facecap.learn.config import DataConfig, ModelConfig
from facecap.learn.crops import CropCameras
from facecap.learn.dataset import SceneRenderer, SceneSet, generate_scenes, scene_folder
from facecap.learn.geometry import encode_pose
from facecap.learn.train import head_reference
from facecap.rig import build_demo_head

DATA = DataConfig(samples=5, validation=2, views=2, chunk=2, supersample=1, canvas_size=40)
MODEL = ModelConfig(crop_size=32, widths=[4, 8, 8], features=16)


def test_the_head_is_drawn_at_the_centre_of_each_canvas(rng):
    rig = build_demo_head()
    scenes = SceneRenderer(rig, DATA, MODEL).render(rng)
    assert scenes.canvas.shape == (1, 2, 40, 40, 4)
    coverage = scenes.canvas[0, ..., 3].astype(float) / 255
    S = coverage.shape[-1]
    centre = coverage[:, S // 2 - 3:S // 2 + 3, S // 2 - 3:S // 2 + 3]
    assert centre.min() > 0.99                                   # the face covers the middle...
    assert coverage[:, [0, -1]].mean() < 0.9                     # ...but not the whole canvas
    cams = CropCameras(torch.as_tensor(scenes.canvas_R[0]), torch.as_tensor(scenes.canvas_centre[0]),
                       torch.as_tensor(scenes.canvas_focal[0]), S)
    reference, scale = head_reference(rig)
    _, code = encode_pose(cams, torch.as_tensor(scenes.R).expand(2, 3, 3), torch.as_tensor(scenes.t).expand(2, 3),
                          torch.as_tensor(reference), scale)
    # The landmarks' 3D centre lies behind the face, so in a side view it projects off the box's centre.
    assert code[:, :2].abs().max() < 0.25
    premultiplied = scenes.canvas[0, ..., :3].astype(int) <= scenes.canvas[0, ..., 3:].astype(int) + 1
    assert premultiplied.all()


def test_scenes_are_cached_resumed_and_extended(tmp_path):
    rig = build_demo_head()
    folder = generate_scenes(rig, DATA, MODEL, tmp_path)
    assert folder == scene_folder(tmp_path, rig, dataclasses.replace(DATA, samples=50), MODEL)
    first = SceneSet.open(folder, "train", DATA)
    assert len(first) == 5 and len(SceneSet.open(folder, "validation", DATA)) == 2
    stamp = (folder / "train_00000.npz").stat().st_mtime_ns
    bigger = dataclasses.replace(DATA, samples=6)                  # the 3rd chunk grows from 1 to 2 scenes
    generate_scenes(rig, bigger, MODEL, tmp_path)
    again = SceneSet.open(folder, "train", bigger)
    assert (folder / "train_00000.npz").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.scenes.weights[:5], first.scenes.weights)
    np.testing.assert_array_equal(again.canvas(np.array([4, 1])), first.canvas(np.array([4, 1])))
    assert len(again) == 6 and not np.array_equal(again.scenes.weights[5], again.scenes.weights[4])
