"""open_take on generated tiny takes (PNG folders, mp4) and on dev_ict_4cam: order, offsets, bit depth, errors."""

import json
import tracemalloc

import cv2
import numpy as np
import pytest

from facecap.camera.model import Calibration, Camera, load_calibration
from facecap.errors import ConfigError, DamagedFrameError, FacecapError, FormatError, MissingFrameError
from facecap.take import FrameCache, open_take
from tests.conftest import shared_path
from tests.take.coded_frames import H, W, decode, write_mp4, write_png_folder


def _calib(names):
    cams = tuple(Camera(n, (W, H), np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]), np.zeros(5), np.eye(3),
                        np.array([0, 0, 500.0])) for n in names)
    return Calibration("mm", cams)


def test_natural_order_offsets_and_range(tmp_path):
    # file names whose plain sort order differs from their natural order
    names = [f"img{k}.png" for k in range(12)]
    write_png_folder(tmp_path / "camA", range(12), names)
    write_png_folder(tmp_path / "camB", range(100, 112))
    (tmp_path / "take.json").write_text(json.dumps({"fps": 25, "start_timecode": "01:00:00:00",
                                                    "frame_range": [2, 7], "cameras": {"camB": {"frame_offset": 3}}}))
    with open_take(tmp_path) as take:
        assert take.camera_names == ["camA", "camB"]
        assert take.num_frames == 5 and take.frame_range == (2, 7) and take.fps == 25.0
        assert take.start_timecode == "01:00:00:00" and take.image_size("camB") == (W, H)
        for i in range(5):
            a, b = take.frames(i)
            assert a.dtype == np.float32 and a.shape == (H, W, 3) and 0 <= a.min() and a.max() <= 1
            assert decode(a) == 2 + i                     # take frame 2+i = camA file 2+i
            assert decode(b) == 100 + 2 + i + 3           # camB file 2+i+3
        with pytest.raises(FacecapError, match="frame 5 out of range"):
            take.frame("camA", 5)
        with pytest.raises(FacecapError, match="no camera 'camC'"):
            take.frame("camC", 0)


def test_grey_and_16bit_frames(tmp_path):
    folder = tmp_path / "cam0"
    folder.mkdir()
    grey16 = (np.arange(W * H, dtype=np.uint16).reshape(H, W) * 20)
    cv2.imwrite(str(folder / "0.png"), grey16)
    cv2.imwrite(str(folder / "1.tif"), np.full((H, W), 128, np.uint8))
    with open_take(tmp_path) as take:
        f0, f1 = take.frame(0, 0), take.frame(0, 1)
    assert f0.shape == (H, W, 3) and f0.dtype == np.float32
    np.testing.assert_allclose(f0[..., 1], grey16 / 65535.0, atol=1e-6)
    np.testing.assert_allclose(f1, 128 / 255.0, atol=1e-6)


def test_video_matches_sequential_decode_after_seeks(tmp_path):
    write_mp4(tmp_path / "cam0.mp4", 120)
    with open_take(tmp_path) as take:
        assert take.num_frames == 120 and take.fps == 30.0
        # forward, a skip, a long jump ahead (seek), backwards (seek), repeat (cache)
        for i in [0, 1, 5, 100, 37, 38, 119, 3, 3]:
            assert decode(take.frame("cam0", i)) == i


def test_video_decoders_start_without_a_preexec_fn(tmp_path, monkeypatch):
    """A preexec_fn forces a plain fork(), which can deadlock while other threads run; the fit reads
    its cameras in threads, so ffmpeg must be spawned without one."""
    import subprocess
    write_mp4(tmp_path / "cam0.mp4", 10)
    spawned, popen = [], subprocess.Popen

    def spy(*args, **kwargs):
        spawned.append(kwargs.get("preexec_fn"))
        return popen(*args, **kwargs)
    monkeypatch.setattr(subprocess, "Popen", spy)
    with open_take(tmp_path) as take:
        assert decode(take.frame("cam0", 7)) == 7
    assert spawned and all(fn is None for fn in spawned)


def test_long_video_streams_in_bounded_memory(tmp_path):
    write_mp4(tmp_path / "cam0.mp4", 300)
    frame_bytes = W * H * 3
    with open_take(tmp_path, cache_frames=8) as take:
        take.frame(0, 0)
        tracemalloc.start()
        for i in range(take.num_frames):
            assert decode(take.frame(0, i)) == i
            assert len(take.cache) <= 8 and take.cache.nbytes <= 8 * frame_bytes
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # 8 cached uint8 frames + a float copy + decoder buffers; all 300 frames would be 300 * 9 kB.
    assert peak < 60 * frame_bytes, peak


def test_frame_cache_lru():
    cache = FrameCache(2)
    loads = []
    def loader(k):
        return lambda: loads.append(k) or np.full(3, k)
    for k in [1, 2, 1, 3, 1, 2]:
        cache.get(k, loader(k))
    assert loads == [1, 2, 3, 2] and len(cache) == 2         # 2 was evicted by 3 (1 was more recent)
    assert not cache.get(1, loader(1)).flags.writeable
    with pytest.raises(ConfigError, match="cache_frames must be at least 1"):
        FrameCache(0)


def test_errors(tmp_path):
    with pytest.raises(FacecapError, match="take folder not found"):
        open_take(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FacecapError, match="no cameras found"):
        open_take(tmp_path)
    write_png_folder(tmp_path / "cam0", range(5))
    write_png_folder(tmp_path / "cam1", range(4))
    with pytest.raises(FacecapError, match="unequal frame counts: cam0 5 frames, cam1 4 frames"):
        open_take(tmp_path)
    with pytest.raises(FacecapError, match=r"camera\(s\) cam1 missing from the calibration"):
        open_take(tmp_path, calibration=_calib(["cam0"]))
    (tmp_path / "take.json").write_text(json.dumps({"frame_range": [0, 5]}))
    with pytest.raises(FacecapError, match=r"frame_range \[0, 5\) is not covered by camera\(s\) cam1"):
        open_take(tmp_path)
    (tmp_path / "take.json").write_text(json.dumps({"frame_range": [0, 4]}))
    with open_take(tmp_path, calibration=_calib(["cam1", "cam0"])) as take:
        assert take.camera_names == ["cam1", "cam0"] and take.calibration.names == ["cam1", "cam0"]
        (tmp_path / "cam0" / "f3.png").write_bytes(b"not a png")
        with pytest.raises(DamagedFrameError, match=r"camera 'cam0' \(take frame 3, file frame 3\): .*f3.png") as err:
            take.frame("cam0", 3)
        assert (err.value.camera, err.value.frame, err.value.path.name) == ("cam0", 3, "f3.png")
    (tmp_path / "take.json").write_text(json.dumps({"frame_range": [3, 1]}))
    with pytest.raises(FormatError, match="'frame_range' must be"):
        open_take(tmp_path)
    (tmp_path / "take.json").write_text(json.dumps({"cameras": {"cam7": {"frame_offset": 1}}}))
    with pytest.raises(FormatError, match=r"camera\(s\) cam7 not in the take"):
        open_take(tmp_path)
    (tmp_path / "take.json").write_text(json.dumps({"fps": -1}))
    with pytest.raises(FormatError, match="'fps' must be a positive number"):
        open_take(tmp_path)
    (tmp_path / "take.json").write_text(json.dumps({"start_timecode": "1:2"}))
    with pytest.raises(FormatError, match="'start_timecode' must look like"):
        open_take(tmp_path)
    (tmp_path / "take.json").write_text("{")
    with pytest.raises(FormatError, match="not valid JSON"):
        open_take(tmp_path)


def test_bad_video_and_size_mismatch(tmp_path):
    (tmp_path / "cam0.mp4").write_bytes(b"garbage")
    with pytest.raises(FacecapError, match="cannot read video .*cam0.mp4"):
        open_take(tmp_path)
    (tmp_path / "cam0.mp4").unlink()
    write_png_folder(tmp_path / "cam0", range(2))
    calib = _calib(["cam0"])
    bad = Calibration("mm", (Camera("cam0", (W * 2, H), calib.cameras[0].K, np.zeros(5), np.eye(3), np.ones(3)),))
    with pytest.raises(FacecapError, match="frames are 64x48 but the calibration says 128x48"):
        open_take(tmp_path, calibration=bad)


def test_dev_take():
    path = shared_path("data", "takes", "dev_ict_4cam")
    with open_take(path, load_calibration(path / "calibration.json"), cache_frames=8) as take:
        assert take.camera_names == ["cam00", "cam01", "cam02", "cam03"]
        assert take.num_frames == 60 and take.fps == 30.0 and take.start_timecode == "00:40:28:09"
        frames = take.frames(59)
        assert all(f.shape == (600, 800, 3) and f.dtype == np.float32 for f in frames)
        assert all(0.2 < f.mean() < 0.6 for f in frames)
        jpeg = cv2.imread(str(path / "cam00" / "000059.jpg"))[:, :, ::-1] / 255.0
        np.testing.assert_allclose(frames[0], jpeg, atol=1e-6)
        assert len(take.cache) <= 8


def test_frames_are_matched_by_the_number_in_their_names(tmp_path, caplog):
    numbers = [10, 11, 12, 14, 15]                    # file 13 is missing
    write_png_folder(tmp_path / "cam0", numbers, [f"shot_cam0_{n:04d}.png" for n in numbers])
    write_png_folder(tmp_path / "cam1", range(10, 16), [f"{n}.png" for n in range(10, 16)])
    with open_take(tmp_path) as take:
        assert take.num_frames == 6
        assert [decode(take.frame("cam0", i)) for i in (0, 1, 2, 4, 5)] == [10, 11, 12, 14, 15]  # no shift
        with pytest.raises(MissingFrameError, match=r"camera 'cam0' \(take frame 3, file frame 3\).*numbered 13"):
            take.frame("cam0", 3)
        assert decode(take.frame("cam1", 3)) == 13    # the other camera's view of frame 3 is there
    assert "1 of the frame files numbered 10..15 are missing" in caplog.text


def test_names_without_frame_counters_keep_natural_order(tmp_path):
    names = ["b.png", "a2.png", "a10.png"]           # 'b' has no number: natural sort order of the names
    write_png_folder(tmp_path / "cam0", [0, 1, 2], names)
    stamps = ["t1000.png", "t1033.png", "t1067.png"]  # time stamps in ms, not frame counters
    write_png_folder(tmp_path / "cam1", [0, 1, 2], stamps)
    with open_take(tmp_path) as take:
        assert [decode(take.frame(0, i)) for i in range(3)] == [1, 2, 0]
        assert take.num_frames == 3 and [decode(take.frame(1, i)) for i in range(3)] == [0, 1, 2]


def _jpeg_bytes():
    from tests.take.coded_frames import coded_frame
    ok, data = cv2.imencode(".jpg", cv2.GaussianBlur(coded_frame(5), (5, 5), 2), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return data.tobytes()


@pytest.mark.parametrize("damage", ["jpeg cut in half", "jpeg with garbage inside", "png bad crc", "png cut short",
                                    "garbage bytes", "empty file", "other size"])
def test_a_damaged_frame_is_detected_not_decoded(tmp_path, damage):
    write_png_folder(tmp_path / "cam0", range(3))
    jpeg = _jpeg_bytes()
    png = (tmp_path / "cam0" / "f1.png").read_bytes()
    (tmp_path / "cam0" / "f1.png").unlink()
    target = tmp_path / "cam0" / ("f1.jpg" if damage.startswith("jpeg") else "f1.png")
    if damage == "jpeg cut in half":
        data = jpeg[:len(jpeg) // 2]
    elif damage == "jpeg with garbage inside":
        k = len(jpeg) // 2
        data = jpeg[:k] + np.random.default_rng(0).integers(0, 256, 64, np.uint8).tobytes() + jpeg[k + 64:]
    elif damage == "png bad crc":
        k = png.index(b"IDAT")
        data = png[:k + 10] + bytes([png[k + 10] ^ 0xFF]) + png[k + 11:]
    elif damage == "png cut short":
        data = png[:len(png) // 2]
    elif damage == "garbage bytes":
        data = np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes()
    elif damage == "empty file":
        data = b""
    else:
        ok, data = cv2.imencode(".png", np.zeros((H // 2, W, 3), np.uint8))
        data = data.tobytes()
    target.write_bytes(data)
    with open_take(tmp_path) as take:
        assert decode(take.frame(0, 0)) == 0 and decode(take.frame(0, 2)) == 2
        with pytest.raises(DamagedFrameError, match=rf"camera 'cam0' \(take frame 1.*{target.name}") as err:
            take.frame(0, 1)
        assert err.value.path == target and err.value.frame == 1 and err.value.reason


def test_an_intact_jpeg_decodes_as_opencv_decodes_it(tmp_path):
    write_png_folder(tmp_path / "cam0", [0])
    (tmp_path / "cam0" / "f0.png").unlink()
    (tmp_path / "cam0" / "f0.jpg").write_bytes(_jpeg_bytes())
    with open_take(tmp_path) as take:
        frame = take.frame_raw(0, 0)
    np.testing.assert_array_equal(frame, cv2.imread(str(tmp_path / "cam0" / "f0.jpg"))[:, :, ::-1])


def test_a_video_that_ends_early_is_a_damaged_frame(tmp_path, monkeypatch):
    import imageio_ffmpeg

    from facecap.take import sources
    write_mp4(tmp_path / "cam0.mp4", 10)
    read_frames = imageio_ffmpeg.read_frames

    def short(path, input_params=None, **kwargs):  # each decode stops after 3 frames, as at a broken packet
        gen = read_frames(path, input_params=input_params, **kwargs)
        yield next(gen)
        for _, frame in zip(range(3), gen):
            yield frame
        gen.close()
    with open_take(tmp_path) as take:
        monkeypatch.setattr(sources.imageio_ffmpeg, "read_frames", short)
        assert [decode(take.frame(0, i)) for i in range(3)] == [0, 1, 2]
        with pytest.raises(DamagedFrameError, match=r"camera 'cam0' \(take frame 3.*the stream ends before it"):
            take.frame(0, 3)
        assert decode(take.frame(0, 7)) == 7          # a later read seeks past the damage


def test_a_calibrated_camera_missing_from_the_take_is_named(tmp_path):
    write_png_folder(tmp_path / "cam0", range(3))
    write_png_folder(tmp_path / "cam1", range(3))
    (tmp_path / "cam2").mkdir()                      # empty
    for folder in (".facecap", "fit"):               # hidden, or a fit's output folder: never a camera
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "weights.png"), np.zeros((H, W, 3), np.uint8))
    (tmp_path / "fit" / "run.json").write_text("{}")
    calib = _calib(["cam0", "cam1", "cam2"])
    with pytest.raises(FacecapError, match=r"camera\(s\) cam2 of the calibration have no frames in the take"):
        open_take(tmp_path, calib)
    with open_take(tmp_path, calib, cameras=["cam1", "cam0"]) as take:
        assert take.camera_names == ["cam0", "cam1"] and take.calibration.names == ["cam0", "cam1"]
    with open_take(tmp_path, calib, cameras=["cam1"]) as take:
        assert take.camera_names == ["cam1"]
    with pytest.raises(FacecapError, match=r"camera\(s\) cam2 to use have no frames in the take"):
        open_take(tmp_path, calib, cameras=["cam0", "cam2"])
    (tmp_path / "take.json").write_text(json.dumps({"cameras": {"cam0": {}, "cam1": {"frame_offset": 0}}}))
    with open_take(tmp_path, calib) as take:          # take.json says which cameras the take has
        assert take.camera_names == ["cam0", "cam1"]
    (tmp_path / "take.json").write_text(json.dumps({"cameras": ["cam0", "cam1"]}))
    with pytest.raises(FormatError, match="'cameras' must map camera names"):
        open_take(tmp_path, calib)


def test_an_unreadable_take_json_is_a_format_error(tmp_path):
    write_png_folder(tmp_path / "cam0", range(2))
    (tmp_path / "take.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(FormatError, match="take.json: not valid JSON"):
        open_take(tmp_path)
    (tmp_path / "take.json").unlink()
    (tmp_path / "take.json").mkdir()
    with pytest.raises(FormatError, match="take.json: cannot be read"):
        open_take(tmp_path)
