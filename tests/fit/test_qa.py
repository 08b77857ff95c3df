"""QA: tiles with the model's edges and signed differences, a full-HD grid, burned-in labels, per-camera errors."""

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from facecap.fit import qa
from facecap.fit.qa import (
    DIFFERENCE_RANGE,
    EDGE_COLOUR,
    MAX_VIDEO_SIZE,
    OUTSIDE_DIM,
    QAVideo,
    check_frames,
    grid_layout,
    qa_tiles,
)


def test_tiles_show_the_signed_difference_and_the_models_edges():
    h, w = 40, 60
    reference = np.full((1, 1, h, w, 3), 0.5, dtype=np.float32)
    coverage = np.zeros((1, 1, h, w), dtype=np.float32)
    coverage[..., 10:30, 10:50] = 1.0
    render = np.zeros_like(reference)
    render[0, 0, 10:30, 10:30] = 0.6                     # brighter than the frame by 0.1 ...
    render[0, 0, 10:30, 30:50] = 0.4                     # ... and darker by 0.1
    tiles = qa_tiles(reference, render, coverage).astype(float) / 255
    assert tiles.shape == (1, 1, h, 2 * w, 3)
    left, right = tiles[0, 0, :, :w], tiles[0, 0, :, w:]
    # Difference panel: red where the model is brighter, blue where darker, by the colour map at ±0.1 / range.
    bright, dark = right[20, 15], right[20, 45]
    expected = qa._DIFFERENCE_COLOURS[[round((1 + s * 0.1 / DIFFERENCE_RANGE) * 127.5) for s in (1, -1)]]
    np.testing.assert_allclose([bright, dark], expected, atol=1 / 255)
    assert bright[0] > bright[2] and dark[2] > dark[0]
    np.testing.assert_allclose(right[2, 2], OUTSIDE_DIM * 0.5, atol=1 / 255)          # not covered: dimmed frame
    # Edge panel: the outline and the step inside the render are drawn; flat parts show the frame.
    np.testing.assert_allclose(left[10, 20], EDGE_COLOUR, atol=1 / 255)                  # outline
    np.testing.assert_allclose(left[20, 30], EDGE_COLOUR, atol=1 / 255)                  # the 0.2 step
    np.testing.assert_allclose(left[20, 15], 0.5, atol=1 / 255)
    np.testing.assert_allclose(left[2, 2], 0.5, atol=1 / 255)
    same = qa_tiles(reference, reference * coverage[..., None], coverage).astype(float) / 255
    np.testing.assert_allclose(same[0, 0, 20, w + 20], qa._DIFFERENCE_COLOURS[128], atol=1 / 255)  # agreement


@pytest.mark.parametrize("cameras, tile, expected", [
    (9, (1600, 600), (3, 3, 0.4)),         # 9 cameras at 1600x1200, qa_scale 0.5: each tile shrinks to 640x240
    (3, (320, 120), (2, 2, 1.0)),          # small tiles are never enlarged
    (1, (4000, 1000), (1, 1, 0.48)),
])
def test_grid_fits_full_hd(cameras, tile, expected):
    cols, rows, scale = grid_layout(cameras, tile)
    assert (cols, rows) == expected[:2] and scale == pytest.approx(expected[2])
    assert cols * tile[0] * scale <= MAX_VIDEO_SIZE[0] and rows * tile[1] * scale <= MAX_VIDEO_SIZE[1]
    assert cols * rows >= cameras


def test_video_is_a_labelled_grid(tmp_path):
    C, h, w = 9, 300, 800                                 # 9 cameras at 1600x1200, qa_scale 0.25
    tiles = np.full((2, C, h, 2 * w, 3), 128, dtype=np.uint8)
    names = [f"cam{c:02d}" for c in range(C)]
    with QAVideo(tmp_path / "qa.mp4", 30000 / 1001, names, start_timecode="00:00:59;28") as video:
        video.write(tiles, frames=[0, 2])
    reader = imageio.get_reader(tmp_path / "qa.mp4")
    frames = [reader.get_data(i).astype(float) for i in range(2)]
    reader.close()
    cols, rows, scale = grid_layout(C, (2 * w, h))
    tw, th = round(2 * w * scale), round(h * scale)
    assert frames[0].shape == (rows * th, cols * tw, 3) and frames[0].shape[1] <= 1920
    for c, name in enumerate(names):
        y, x = (c // cols) * th, (c % cols) * tw
        band = slice(y, y + th // 8), slice(x, x + tw // 2)
        for f, (frame, label) in enumerate(zip(frames, ("frame 0  00:00:59;28", "frame 2  00:01:00;02"))):
            expected = np.full((th, tw, 3), 128, dtype=np.uint8)
            qa._label(expected, f"{name}  {label}", 0, 0, th)
            crop = frame[band]
            assert np.abs(crop - expected[:th // 8, :tw // 2]).mean() < 6, (name, f)
        assert np.abs(frames[0][band] - frames[1][band]).mean() > 1          # the frame number and timecode change
        assert np.abs(frames[0][y + th // 2, x + tw // 2] - 128).max() < 6    # the rest of the tile is the tile


@pytest.mark.slow
def test_check_frames_measures_each_camera(tiny_take):
    from facecap.fit.appearance import Appearance
    from facecap.fit.problem import SequenceState
    from facecap.render.ops import make_context
    from tests.fit.conftest import tiny_batch, tiny_model

    rig, take, truth = tiny_take
    model = tiny_model(rig, take)

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)
    state = SequenceState(weights=f32(truth.weights), R=f32(truth.R), t=f32(truth.t),
                          identity=torch.zeros(rig.num_identities))
    state.appearance = Appearance.neutral(torch.full((len(model.samples), 3), 0.5), len(model.cams))
    frames = np.array([1, 4])
    batch = tiny_batch(take, frames, silhouettes=False)
    images = batch.images
    result = check_frames(model, state, frames, images, batch.view_ok, make_context("torch", torch.device("cpu")),
                          0.5)
    C, H, W = images.shape[1], images.shape[3], images.shape[4]
    assert result.photometric_rms.shape == (2,) and result.photometric_rms_per_camera.shape == (2, C)
    assert result.panels.shape == (2, C, H // 2, W, 3) and result.panels.dtype == np.uint8
    # The take's RMS is the per-camera RMS pooled over the cameras' samples, so it lies between them.
    per_camera = result.photometric_rms_per_camera
    assert np.all(per_camera.min(1) <= result.photometric_rms + 1e-3)
    assert np.all(result.photometric_rms <= per_camera.max(1) + 1e-3)
    assert np.all(per_camera > 1.0)                      # a grey albedo does not explain a textured face
    alone = check_frames(model, state, frames, images, batch.view_ok, None, 0.5)
    np.testing.assert_allclose(alone.photometric_rms, result.photometric_rms)
    assert alone.panels is None
