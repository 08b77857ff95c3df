"""The fit's frame feed: every batch's frames in order, read ahead in threads; images on the device
as OpenCV would resample them; the frame cache shared by threads."""

import sys
import threading

import cv2
import numpy as np
import pytest
import torch

from facecap.fit.feed import FrameBatch, feed_batches, frames_to_device, read_batch
from facecap.take import FrameCache, open_take
from facecap.take.sources import to_float
from tests.take.coded_frames import decode, write_mp4, write_png_folder

FRAMES = 40


def _numbers(batch: FrameBatch) -> np.ndarray:
    """[B, C] the frame numbers written into the batch's images."""
    images = batch.images.permute(0, 1, 3, 4, 2).numpy()
    return np.array([[decode(img) for img in per_frame] for per_frame in images])


def test_feed_reads_each_batch_ahead_in_threads_and_in_order(tmp_path):
    write_png_folder(tmp_path / "cam0", range(FRAMES))
    write_mp4(tmp_path / "cam1.mp4", FRAMES)
    spans = [np.arange(a, min(a + 8, FRAMES)) for a in range(0, FRAMES, 8)]
    plan = [np.array([0, 13, 26, 39])] + spans * 2                 # keyframes, then two sweeps (the video seeks back)
    reads: list[tuple[int, int, str]] = []
    with open_take(tmp_path) as take:
        real_read = take.frame_raw

        def recorded(cam, i):
            reads.append((cam, i, threading.current_thread().name))
            return real_read(cam, i)
        take.frame_raw = recorded
        feed = feed_batches(take, plan, torch.device("cpu"), silhouettes=False, threads=2)
        for k, frames in enumerate(plan):
            batch = next(feed)
            np.testing.assert_array_equal(batch.frames, frames)
            np.testing.assert_array_equal(_numbers(batch), np.repeat(frames[:, None], 2, axis=1))
            if k + 1 < len(plan):       # the next batch is read while this one is "fitted"
                wanted = {(c, int(i)) for c in range(2) for i in plan[k + 1]}
                for _ in range(500):
                    if wanted <= {(c, i) for c, i, _ in reads[-2 * len(plan[k + 1]):]}:
                        break
                    threading.Event().wait(0.01)
                else:
                    pytest.fail(f"batch {k + 1} was not read ahead")
        with pytest.raises(StopIteration):
            next(feed)
    assert all(name.startswith("facecap-feed") for _, _, name in reads)
    for cam in range(2):                                           # each camera read in the plan's order
        assert [i for c, i, _ in reads if c == cam] == [int(i) for frames in plan for i in frames]


def test_read_batch_matches_the_feed_and_the_take(tmp_path):
    write_png_folder(tmp_path / "cam0", range(12))
    write_png_folder(tmp_path / "cam1", range(100, 112))
    frames = np.array([3, 4, 9])
    with open_take(tmp_path) as take:
        direct = read_batch(take, frames, torch.device("cpu"), silhouettes=True)
        fed = next(feed_batches(take, [frames], torch.device("cpu"), silhouettes=True, threads=2))
        expected = np.stack([np.stack([take.frame(c, i) for c in range(2)]) for i in frames]).transpose(0, 1, 4, 2, 3)
    for batch in (direct, fed):
        np.testing.assert_array_equal(batch.images.numpy(), expected)
        assert batch.silhouette.shape == (3, 2, 1, *expected.shape[-2:])
        assert batch.silhouette_found.dtype == torch.bool
    torch.testing.assert_close(direct.silhouette, fed.silhouette, rtol=0, atol=1e-4)   # BLAS rounding per thread


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_frames_reach_the_device_as_to_float_makes_them(dtype):
    rng = np.random.default_rng(0)
    high = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    stored = (rng.uniform(0, high, (2, 3, 5, 7, 3))).astype(dtype)
    np.testing.assert_array_equal(frames_to_device(stored, torch.device("cpu")).numpy(),
                                  to_float(stored).transpose(0, 1, 4, 2, 3))


@pytest.mark.parametrize("scale", [0.5, 0.25, 0.125])
def test_coarse_images_are_opencvs_area_resampling(scale):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (2, 3, 48, 64, 3)).astype(np.float32)
    batch = FrameBatch(np.arange(2), torch.as_tensor(images.transpose(0, 1, 4, 2, 3)),
                       torch.ones(2, 3, dtype=torch.bool))
    size = (round(64 * scale), round(48 * scale))
    expected = np.stack([np.stack([cv2.resize(img, size, interpolation=cv2.INTER_AREA) for img in per_frame])
                         for per_frame in images])
    np.testing.assert_allclose(batch.images_at(scale).permute(0, 1, 3, 4, 2).numpy(), expected, atol=1e-6)


def test_frame_cache_shared_by_threads_stays_bounded_and_right():
    cache = FrameCache(4)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for key in rng.integers(0, 12, 3000):
                frame = cache.get(int(key), lambda k=int(key): np.full(3, k))
                assert frame[0] == key
        except BaseException as err:  # noqa: BLE001 - reported on the main thread
            errors.append(err)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)              # threads switch between any two steps of a lookup
    try:
        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    assert len(cache) <= 4 and cache.hits + cache.misses == 8 * 3000
