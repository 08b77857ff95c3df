"""Per-frame errors from report.json: flagged frames, the worst and median frames, errors.png."""

import matplotlib.image
import numpy as np
import pytest

from facecap.fit.review import FrameErrors, plot_fit_errors


def _report(rng, T=40, cameras=("cam00", "cam01", "cam02"), photometric=True):
    """A report.json's data: landmark errors ~1 px and photometric ~3 grey levels per camera, with frame 7
    interpolated, frame 20 off in every camera and frame 31 off in cam01 alone."""
    C = max(len(cameras), 2)
    landmark = 1.0 + 0.05 * rng.normal(size=(T, C))
    colour = 3.0 + 0.1 * rng.normal(size=(T, C))
    landmark[20] += 4.0
    colour[31, 1] += 6.0
    frames = []
    for i in range(T):
        frame = {"frame": 100 + i, "landmark_error_px": float(np.sqrt((landmark[i] ** 2).mean())),
                 "photometric_rms": float(np.sqrt((colour[i] ** 2).mean())) if photometric else None,
                 "interpolated": i == 7}
        if cameras:
            frame["landmark_error_px_per_camera"] = landmark[i].tolist()
            frame["photometric_rms_per_camera"] = colour[i].tolist() if photometric else None
        frames.append(frame)
    if cameras:
        frames[3]["landmark_error_px_per_camera"][2] = None             # cam02 saw no landmark in frame 3
    return {"frames": frames, "cameras": list(cameras), "seconds": {"total": 12.5}}


def test_flags_interpolated_frames_and_outliers(rng):
    errors = FrameErrors.from_report(_report(rng))
    assert errors.camera_names == ("cam00", "cam01", "cam02")
    assert errors.landmark_px_per_camera.shape == (40, 3) and np.isnan(errors.landmark_px_per_camera[3, 2])
    assert list(errors.frames[errors.flagged()]) == [107, 120, 131]
    worst, median = errors.worst_and_median()
    assert errors.frames[worst] == 131                                   # ranked by photometric error
    assert errors.score[median] == pytest.approx(np.sort(errors.photometric_rms)[20])


def test_a_take_fitted_evenly_well_flags_nothing(rng):
    report = _report(rng, cameras=(), photometric=False)
    for frame in report["frames"]:
        frame["landmark_error_px"] = 1.0 + 0.01 * rng.normal()        # spread of 0.01 px: a 0.05 px outlier is none
        frame["interpolated"] = False
    report["frames"][5]["landmark_error_px"] = 1.05
    errors = FrameErrors.from_report(report)
    assert errors.camera_names == () and errors.landmark_px_per_camera is None
    assert not errors.flagged().any()


def test_without_photometry_frames_rank_by_landmarks(rng):
    errors = FrameErrors.from_report(_report(rng, photometric=False))
    assert not errors.has_photometric and errors.photometric_rms_per_camera is None
    assert errors.frames[errors.worst_and_median()[0]] == 120


def _red_pixels(path):
    image = matplotlib.image.imread(path)[..., :3]
    return int(((image[..., 0] > 0.8) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)).sum())


def test_errors_png_marks_the_flagged_frames(rng, tmp_path):
    flagged = plot_fit_errors(FrameErrors.from_report(_report(rng)), tmp_path / "errors.png")
    image = matplotlib.image.imread(flagged)
    assert image.shape[1] > 1000 and image.std() > 0.05
    assert _red_pixels(flagged) > 50                                     # red circles on flagged frames
    quiet = _report(rng, cameras=(), photometric=False)
    for frame in quiet["frames"]:
        frame["landmark_error_px"], frame["interpolated"] = 1.0, False
    assert _red_pixels(plot_fit_errors(FrameErrors.from_report(quiet), tmp_path / "quiet.png")) == 0
