"""Damaged copies of a tiny synthetic take, each with what ``facecap`` must do with it.

:func:`make_tiny_take` renders the demo head once (3 cameras x 4 frames of 160x120 png, a landmarks file
with the true points plus 1 px of noise, the rig npz). Each :class:`Case` of :data:`CASES` breaks one
thing in a copy of it (a file, a key, a frame, a folder, a config value, the output folder) and returns
the command line to run on the copy: the command must end with exit status 2 and a message naming the
file or key (``error``, a regular expression), or succeed (``error`` None), never crash or be silently
wrong. Fits run with ``photometric=false`` where the case is about checking inputs, so that no
photometric fit runs; ``pending`` says what work the expected behaviour waits for.
"""

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

__all__ = ["TinyTake", "Case", "CASES", "make_tiny_take", "copy_take"]

FRAMES, CAMERAS, WIDTH, HEIGHT = 4, 3, 160, 120


@dataclass(frozen=True)
class TinyTake:
    """A tiny take's files under ``root``: the take folder, the rig npz and the landmarks file."""

    root: Path

    @property
    def take(self) -> Path:
        return self.root / "take"

    @property
    def rig(self) -> Path:
        return self.root / "rig.npz"

    @property
    def landmarks(self) -> Path:
        return self.take / "landmarks.json"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def camera(self, c: int) -> Path:
        return self.take / f"cam{c:02d}"

    def frame(self, c: int, i: int) -> Path:
        return self.camera(c) / f"{i:06d}.png"

    def fit(self, *extra: str, photometric: bool = False) -> list[str]:
        """``facecap fit`` of the take with its landmarks file into ``out``, plus ``extra`` arguments."""
        args = ["-q", "fit", str(self.take), "--rig", str(self.rig), "--out", str(self.out),
                "--set", f"landmarks.landmarks_file={self.landmarks}", "--set", "device=cpu"]
        if photometric:      # the shortest photometric fit: one keyframe iteration, then the check of every frame
            args += ["--set", "schedule.keyframes=1", "--set", "schedule.keyframe_scales=[0.25]",
                     "--set", "schedule.keyframe_iterations=[1]", "--set", "schedule.passes=0",
                     "--set", "qa_video=false"]
        else:
            args += ["--set", "photometric=false"]
        return args + list(extra)


def make_tiny_take(root: str | Path) -> TinyTake:
    """Render the demo head's tiny take into ``root`` (a few seconds on a CPU)."""
    from facecap.rig import build_demo_head, save_rig
    from facecap.synth.landmarks import synthetic_landmarks
    from facecap.synth.scene import default_scene
    from facecap.synth.take import SynthConfig, synthesize_take
    from facecap.take.landmarks import save_landmarks
    tiny = TinyTake(Path(root))
    rig = build_demo_head()
    config = SynthConfig()
    config = dataclasses.replace(config, supersample=1, backend="torch",
                                 ring=dataclasses.replace(config.ring, num_cameras=CAMERAS, width=WIDTH, height=HEIGHT),
                                 motion=dataclasses.replace(config.motion, num_frames=FRAMES, key_spacing=2))
    calibration, truth = default_scene(rig, config)
    synthesize_take(rig, calibration, truth, tiny.take, config)
    save_landmarks(synthetic_landmarks(rig, calibration, truth, 1.0, np.random.default_rng(0)), tiny.landmarks)
    save_rig(rig, tiny.rig)
    return tiny


def copy_take(tiny: TinyTake, root: str | Path) -> TinyTake:
    """A copy of ``tiny`` under ``root`` (its rig, take and landmarks; no outputs)."""
    copy = TinyTake(Path(root))
    copy.root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny.take, copy.take)
    shutil.copy2(tiny.rig, copy.rig)
    return copy


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set_point(value: object) -> Callable[[TinyTake], list[str]]:
    """A landmark of cam01, frame 1 set to ``value`` (its 'visible' stays true)."""
    def damage(t: TinyTake) -> list[str]:
        _edit_json(t.landmarks, lambda d: d["cameras"]["cam01"]["points"][1][30].__setitem__(0, value))
        text = t.landmarks.read_text().replace("Infinity", "1e999")   # JSON's own spelling of inf is 1e999
        t.landmarks.write_text(text)
        return t.fit()
    return damage


def _as_jpeg(t: TinyTake) -> None:
    """The take's frames as JPEG files (the PNGs removed)."""
    for png in sorted(t.take.glob("cam*/*.png")):
        cv2.imwrite(str(png.with_suffix(".jpg")), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 95])
        png.unlink()


def _jpeg_cut_in_half(t: TinyTake) -> list[str]:
    _as_jpeg(t)
    jpeg = t.frame(1, 2).with_suffix(".jpg")
    jpeg.write_bytes(jpeg.read_bytes()[:jpeg.stat().st_size // 2])
    return t.fit(photometric=True)


def _every_view_cut(t: TinyTake) -> list[str]:
    _as_jpeg(t)
    for c in range(3):
        jpeg = t.frame(c, 2).with_suffix(".jpg")
        jpeg.write_bytes(jpeg.read_bytes()[:jpeg.stat().st_size // 2])
    return t.fit(photometric=True)


def _interpolates_frame_without_views(t: TinyTake) -> None:
    """No view of frame 2 could be read: it is interpolated from its neighbours and flagged."""
    report = json.loads((t.out / "report.json").read_text())
    if len(report["damaged_views"]) != 3 or not report["frames"][2]["interpolated"]:
        raise AssertionError(f"frame 2: {report['frames'][2]}, damaged views {report['damaged_views']}")
    frames = json.loads((t.out / "animation.json").read_text())["frames"]
    between = (np.array(frames[1]["weights"]) + np.array(frames[3]["weights"])) / 2
    if not np.allclose(frames[2]["weights"], between):
        raise AssertionError("frame 2's weights are not its neighbours' mean")


def _reports_damaged_view(t: TinyTake) -> None:
    """The fit left cam01's view of frame 2 out, fitted the frame from its other views, and says so."""
    report = json.loads((t.out / "report.json").read_text())
    named = r"camera 'cam01' \(take frame 2, file frame 2\): .*000002\.jpg: truncated or corrupt JPEG"
    if len(report["damaged_views"]) != 1 or not re.search(named, report["damaged_views"][0]):
        raise AssertionError(f"report.json's damaged_views: {report['damaged_views']}")
    if report["frames"][2]["interpolated"]:
        raise AssertionError("frame 2 was interpolated, not fitted from its other views")


def _as_video(t: TinyTake, c: int) -> Path:
    """Camera ``c``'s frames as an mp4 beside the others' folders; returns its path."""
    path = t.take / f"cam{c:02d}.mp4"
    writer = imageio_ffmpeg.write_frames(str(path), (WIDTH, HEIGHT), fps=30, quality=9, macro_block_size=8,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for png in sorted(t.camera(c).glob("*.png")):
        writer.send(np.ascontiguousarray(cv2.imread(str(png))[:, :, ::-1]))
    writer.close()
    shutil.rmtree(t.camera(c))
    return path


def _video_cut_short(t: TinyTake) -> list[str]:
    video = _as_video(t, 1)
    video.write_bytes(video.read_bytes()[:video.stat().st_size * 3 // 4])
    return t.fit()


def _gap(t: TinyTake) -> list[str]:
    t.frame(1, 2).unlink()                          # take.json's frame_range [0, 4) is still covered by cam01
    return t.fit()


def _last_missing(t: TinyTake) -> list[str]:
    t.frame(1, FRAMES - 1).unlink()
    return t.fit()


def _camera_gone(empty: bool, listed: str) -> Callable[[TinyTake], list[str]]:
    """cam02's folder removed (``empty``: left empty); take.json then lists ``listed`` cameras: "none" (no
    'cameras' key), "others" (cam02 left out) or "all"."""
    def damage(t: TinyTake) -> list[str]:
        shutil.rmtree(t.camera(2))
        if empty:
            t.camera(2).mkdir()
        if listed == "none":
            _edit_json(t.take / "take.json", lambda d: d.pop("cameras"))
        elif listed == "others":
            _edit_json(t.take / "take.json", lambda d: d["cameras"].pop("cam02"))
        return t.fit()
    return damage


def _camera_not_calibrated(t: TinyTake) -> list[str]:
    shutil.copytree(t.camera(2), t.take / "cam03")
    return t.fit()


def _json_edit(relative: str, change: Callable[[dict], object]) -> Callable[[TinyTake], list[str]]:
    """The JSON file ``relative`` (under the copy's root) changed in place; a fit."""
    def damage(t: TinyTake) -> list[str]:
        _edit_json(t.root / relative, change)
        return t.fit()
    return damage


def _removed(relative: str) -> Callable[[TinyTake], list[str]]:
    def damage(t: TinyTake) -> list[str]:
        path = t.root / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        return t.fit()
    return damage


def _config_file_binary(t: TinyTake) -> list[str]:
    (t.root / "c.yaml").write_bytes(b"\xff\xfe\x00")
    return t.fit("--config", str(t.root / "c.yaml"))


def _npy_rig(t: TinyTake) -> list[str]:
    np.save(t.root / "rig.npy", np.zeros(3))
    (t.root / "rig.npy").replace(t.rig)
    return t.fit()


def _camera_missing_with_config(t: TinyTake) -> list[str]:
    shutil.rmtree(t.camera(2))
    return t.fit("--set", "cameras=[cam00, cam01]")


def _write(relative: str, content: bytes | str, *extra: str) -> Callable[[TinyTake], list[str]]:
    """``relative`` (under the copy's root) replaced by ``content``; a fit with ``extra`` arguments."""
    def damage(t: TinyTake) -> list[str]:
        path = t.root / relative
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return t.fit(*extra)
    return damage


def _folder_for(relative: str) -> Callable[[TinyTake], list[str]]:
    def damage(t: TinyTake) -> list[str]:
        path = t.root / relative
        path.unlink()
        path.mkdir()
        return t.fit()
    return damage


def _rig_numbers_times(s: float) -> Callable[[TinyTake], list[str]]:
    """The rig's lengths times ``s`` with its 'units' unchanged: the demo head is in cm, so 10 makes a rig
    in mm whose npz says cm, 0.01 one in m."""
    def damage(t: TinyTake) -> list[str]:
        from facecap.rig import load_rig, save_rig
        rig = load_rig(t.rig)
        save_rig(rig.replace(neutral=rig.neutral * s, shape_deltas=rig.shape_deltas * s,
                             corrective_deltas=rig.corrective_deltas * s, identity_deltas=rig.identity_deltas * s),
                 t.rig)
        return t.fit()
    return damage


def _tracking_rig_other_shapes(t: TinyTake) -> list[str]:
    from facecap.rig import load_rig, save_rig
    rig = load_rig(t.rig)
    save_rig(rig.replace(shape_names=tuple(f"other{k}" for k in range(rig.num_shapes))), t.root / "tracking.npz")
    return t.fit("--tracking-rig", str(t.root / "tracking.npz"))


def _out_under_a_file(t: TinyTake) -> list[str]:
    (t.root / "file").write_text("x")
    args = t.fit()
    args[args.index("--out") + 1] = str(t.root / "file" / "out")
    return args


def _out_is_a_file(t: TinyTake) -> list[str]:
    t.out.write_text("x")
    return t.fit()


def _out_holds_other_files(t: TinyTake) -> list[str]:
    t.out.mkdir()
    (t.out / "notes.txt").write_text("mine")
    return t.fit()


def _out_holds_an_older_fit(t: TinyTake) -> list[str]:
    from facecap.publish import publishing
    with publishing(t.out, "fit") as run:
        (run.staging / "animation.json").write_text("{}")
        (run.staging / "qa.mp4").write_bytes(b"an old video")
    return t.fit()


def _no_stale_file(t: TinyTake) -> None:
    if (t.out / "qa.mp4").exists():
        raise AssertionError("the old run's qa.mp4 survived the new run")


def _out_holds_a_take(t: TinyTake) -> list[str]:
    from facecap.publish import publishing
    with publishing(t.out, "synth") as run:
        (run.staging / "take.json").write_text("{}")
    return t.fit()


def _meshes(t: TinyTake, scale: float = 1.0, frames: int = 2) -> Path:
    from facecap.rig import evaluate_rig, load_rig
    rig = load_rig(t.rig)
    path = t.root / "meshes.npz"
    np.savez(path, vertices=evaluate_rig(rig, np.full((frames, rig.num_shapes), 0.2)) * scale)
    return path


def _solve(meshes: Callable[[TinyTake], Path]) -> Callable[[TinyTake], list[str]]:
    def damage(t: TinyTake) -> list[str]:
        return ["-q", "solve", "--rig", str(t.rig), "--meshes", str(meshes(t)), "--out", str(t.out)]
    return damage


def _npy_meshes(t: TinyTake) -> Path:
    path = _meshes(t)
    np.save(t.root / "meshes.npy", np.load(path)["vertices"])
    return t.root / "meshes.npy"


def _nan_meshes(t: TinyTake) -> Path:
    path = _meshes(t)
    vertices = np.load(path)["vertices"]
    vertices[1, 100] = np.nan
    np.savez(path, vertices=vertices)
    return path


def _synth_with_calibration(t: TinyTake) -> list[str]:
    _edit_json(t.take / "calibration.json", lambda d: d["cameras"]["cam00"].update(image_size="320x240"))
    return ["-q", "synth", "--out", str(t.out), "--calibration", str(t.take / "calibration.json")]


def _synth_with_animation(t: TinyTake) -> list[str]:
    return ["-q", "synth", "--out", str(t.out), "--animation", str(t.landmarks)]


@dataclass(frozen=True)
class Case:
    """One damaged input.

    Attributes:
        name: short identifier. what: the damage, in words.
        run: breaks a copy of the tiny take and returns the ``facecap`` arguments to run on it.
        error: a regular expression the error message must match (it names the file or key), or None
            where the command must succeed.
        check: for a command that succeeds, a further check of the copy after it.
        photometric: the case runs the (shortest) photometric fit, which reads the frames.
        pending: what the expected behaviour waits for, where it does not hold yet.
    """

    name: str
    what: str
    run: Callable[[TinyTake], list[str]]
    error: str | None
    check: Callable[[TinyTake], None] | None = None
    photometric: bool = False
    pending: str | None = None

    @property
    def behaviour(self) -> str:
        """What facecap does with the damage, for tables."""
        return "succeeds" if self.error is None else "exit 2: " + re.sub(r"\\(.)", r"\1", self.error)



CASES: list[Case] = [
    Case("landmark_nan", "a landmark point NaN (visible true)", _set_point(float("nan")), None),
    Case("landmark_null", "a landmark point null (visible true)", _set_point(None), None),
    Case("landmark_inf", "a landmark point 1e999 = inf (visible true)", _set_point(float("inf")), None),
    Case("landmark_1e300", "a landmark point 1e300 (visible true)", _set_point(1e300), None),
    Case("landmarks_list", "the landmarks file is a JSON list", _write("take/landmarks.json", "[1, 2]"),
         r"landmarks\.json: must hold a JSON object"),
    Case("landmarks_truncated", "the landmarks file cut short", _write("take/landmarks.json", '{"format": "fa'),
         r"landmarks\.json: not valid JSON"),
    Case("landmarks_binary", "the landmarks file is binary garbage", _write("take/landmarks.json", b"\xff\xd8\x00"),
         r"landmarks\.json: not valid JSON"),
    Case("landmarks_missing_camera", "the landmarks file lacks a camera",
         _json_edit("take/landmarks.json", lambda d: d["cameras"].pop("cam02")),
         r"landmarks lack camera\(s\) cam02"),
    Case("landmarks_confidence", "a landmark confidence of 2",
         _json_edit("take/landmarks.json", lambda d: d["cameras"]["cam00"]["confidence"][0].__setitem__(3, 2)),
         r"landmarks\.json: 'confidence' values must lie in \[0, 1\]"),
    Case("config_nan", "--set loss.l1=.nan", lambda t: t.fit("--set", "loss.l1=.nan"),
         r"config key 'loss\.l1': expected a finite number, got nan"),
    Case("config_inf", "--set schedule.damping=.inf", lambda t: t.fit("--set", "schedule.damping=.inf"),
         r"config key 'schedule\.damping': expected a finite number, got inf"),
    Case("config_negative", "--set schedule.damping=-1", lambda t: t.fit("--set", "schedule.damping=-1"),
         r"damping must be >= 0"),
    Case("config_file_binary", "--config FILE of binary garbage", _config_file_binary, r"c\.yaml is not valid YAML"),
    Case("config_unknown_key", "--set loss.l2=1", lambda t: t.fit("--set", "loss.l2=1"),
         r"unknown config key 'loss\.l2'"),
    Case("jpeg_cut_in_half", "a JPEG frame cut in half (photometric fit): the view is left out and reported",
         _jpeg_cut_in_half, None, check=_reports_damaged_view, photometric=True),
    Case("jpeg_every_view_cut", "every camera's JPEG of one frame cut in half (photometric fit)", _every_view_cut,
         None, check=_interpolates_frame_without_views, photometric=True),
    Case("frame_gap", "a frame file missing inside a camera's numbered files", _gap, None),
    Case("frame_last_missing", "a camera's last frame file missing", _last_missing,
         r"frame_range \[0, 4\) is not covered by camera\(s\) cam01"),
    Case("frame_garbage_first", "a camera's first frame file is garbage",
         _write("take/cam00/000000.png", b"\x89PNG garbage"), None),
    Case("video_cut_short", "a camera's mp4 cut to three quarters", _video_cut_short,
         r"camera 'cam01': cannot read video .*cam01\.mp4"),
    Case("camera_folder_missing", "a calibrated camera's folder missing, take.json listing no cameras",
         _camera_gone(empty=False, listed="none"), r"camera\(s\) cam02 of the calibration have no frames in the take"),
    Case("camera_folder_empty", "a calibrated camera's folder empty, take.json listing no cameras",
         _camera_gone(empty=True, listed="none"), r"camera\(s\) cam02 of the calibration have no frames in the take"),
    Case("camera_missing_listed", "a calibrated camera's folder missing, take.json listing it",
         _camera_gone(empty=False, listed="all"), r"take\.json: camera\(s\) cam02 not in the take"),
    Case("camera_missing_unlisted", "a calibrated camera missing, take.json listing the others",
         _camera_gone(empty=False, listed="others"), None),
    Case("camera_missing_config", "a calibrated camera missing, --set cameras=[cam00,cam01]",
         _camera_missing_with_config, None),
    Case("camera_not_calibrated", "a camera folder the calibration lacks", _camera_not_calibrated,
         r"camera\(s\) cam03 missing from the calibration"),
    Case("calibration_image_size", "image_size \"320x240\" in the calibration",
         _json_edit("take/calibration.json", lambda d: d["cameras"]["cam00"].update(image_size="320x240")),
         r"calibration\.json: camera 'cam00': 'image_size' must be \[width, height\]"),
    Case("calibration_list", "the calibration is a JSON list", _write("take/calibration.json", "[]"),
         r"calibration\.json: must hold a JSON object"),
    Case("calibration_nan", "a NaN in a camera's K",
         _json_edit("take/calibration.json", lambda d: d["cameras"]["cam01"]["K"][0].__setitem__(0, float("nan"))),
         r"calibration\.json: camera 'cam01': K must be finite"),
    Case("calibration_size_mismatch", "the calibration's image size differs from the frames'",
         _json_edit("take/calibration.json", lambda d: d["cameras"]["cam01"].update(image_size=[320, 240])),
         r"camera 'cam01' frames are 160x120 but the calibration says 320x240"),
    Case("calibration_missing", "no calibration.json", _removed("take/calibration.json"),
         r"calibration file not found: .*calibration\.json"),
    Case("take_json_binary", "take.json is binary garbage", _write("take/take.json", b"\xff\xfe{"),
         r"take\.json: not valid JSON"),
    Case("take_json_folder", "take.json is a folder", _folder_for("take/take.json"), r"take\.json: cannot be read"),
    Case("take_json_cameras_list", "take.json's cameras is a list",
         _json_edit("take/take.json", lambda d: d.update(cameras=["cam00"])),
         r"take\.json: 'cameras' must map camera names"),
    Case("take_json_range", "take.json's frame_range beyond the frames",
         _json_edit("take/take.json", lambda d: d.update(frame_range=[0, 9])),
         r"frame_range \[0, 9\) is not covered by camera\(s\) cam00, cam01, cam02"),
    Case("take_missing", "the take folder does not exist", _removed("take"),
         r"calibration file not found|take folder not found"),
    Case("rig_empty", "an empty rig file", _write("rig.npz", b""), r"rig\.npz: the rig file is empty"),
    Case("rig_npy", "a .npy array given as the rig", _npy_rig,
         r"rig\.npz: a single \.npy array, not a rig npz"),
    Case("rig_garbage", "a rig file of garbage", _write("rig.npz", b"PK\x03\x04 garbage"),
         r"rig\.npz: not a readable npz file"),
    Case("rig_in_mm_says_cm", "a rig in mm whose npz says cm", _rig_numbers_times(10.0),
         r"probably in mm, not cm"),
    Case("rig_in_m_says_cm", "a rig in m whose npz says cm", _rig_numbers_times(0.01),
         r"probably in m, not cm"),
    Case("tracking_rig_names", "a tracking rig with other shape names", _tracking_rig_other_shapes,
         r"the tracking rig's shape names differ"),
    Case("out_under_a_file", "--out under a file", _out_under_a_file,
         r"cannot create the output folder .*file/out: .*file is a file"),
    Case("out_is_a_file", "--out is a file", _out_is_a_file, r"output folder .*out: a file of that name exists"),
    Case("out_foreign", "--out holds files no facecap run wrote", _out_holds_other_files,
         r"holds files that no facecap run wrote \(notes\.txt\)"),
    Case("out_other_command", "--out holds a take written by facecap synth", _out_holds_a_take,
         r"holds the results of 'facecap synth'"),
    Case("out_older_fit", "--out holds an older fit with a qa.mp4", _out_holds_an_older_fit, None,
         check=_no_stale_file),
    Case("solve_no_meshes", "solve with T = 0 meshes", _solve(lambda t: _meshes(t, frames=0)),
         r"no meshes to solve \(T = 0\)"),
    Case("solve_meshes_in_mm", "solve with meshes in mm for a rig in cm",
         _solve(lambda t: _meshes(t, scale=10.0)), r"they are probably in mm, the rig in cm"),
    Case("solve_npy", "solve with a .npy of meshes", _solve(_npy_meshes), r"meshes\.npy: expected an npz"),
    Case("solve_nan", "solve with a NaN vertex", _solve(_nan_meshes),
         r"1 of the 2 meshes hold NaN or infinite coordinates"),
    Case("synth_calibration", "synth with image_size \"320x240\" in its calibration", _synth_with_calibration,
         r"calibration\.json: camera 'cam00': 'image_size' must be"),
    Case("synth_animation", "synth with a landmarks file given as the animation", _synth_with_animation,
         r"landmarks\.json: key 'format' must be 'facecap-animation'"),
]
