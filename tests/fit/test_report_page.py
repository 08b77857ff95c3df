"""report.html: self-contained, the right stills and rows, and it renders in headless Chromium."""

import base64
import re
import shutil
import subprocess

import cv2
import matplotlib.image
import numpy as np
import pytest

from facecap.animation import Animation
from facecap.export.timecode import take_timecode
from facecap.fit.outputs import write_review
from facecap.fit.qa import QAVideo
from tests.fit.test_review import _report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """A 40-frame take at 29.97 fps with a QA video whose frame i is grey level 5 i: (out dir, report, paths)."""
    out = tmp_path_factory.mktemp("review")
    report = _report(np.random.default_rng(1))
    T = len(report["frames"])
    anim = Animation(("jawOpen",), np.zeros((T, 1)), np.broadcast_to(np.eye(3), (T, 3, 3)), np.zeros((T, 3)),
                     fps=30000 / 1001, frames=np.arange(100, 100 + T), start_timecode="00:00:59;28")
    with QAVideo(out / "qa.mp4", anim.fps, report["cameras"], anim.start_timecode) as video:
        tiles = np.repeat((5 * np.arange(T, dtype=np.uint8))[:, None, None, None, None], 3, axis=1)
        video.write(np.broadcast_to(tiles, (T, 3, 60, 160, 3)), frames=anim.frame_numbers)
    return out, report, write_review(report, anim, out, out / "qa.mp4")


def _stills(page):
    """The JPEG stills of the page, decoded, in order."""
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    return [cv2.imdecode(np.frombuffer(base64.b64decode(u), np.uint8), cv2.IMREAD_GRAYSCALE) for u in uris]


def test_page_is_self_contained_with_stills_and_rows(review):
    out, report, paths = review
    page = paths["html"].read_text(encoding="utf-8")
    assert set(re.findall(r'src="([a-z]+):', page)) == {"data"} and "<script" not in page and "http" not in page
    assert page.count('src="data:image/png;base64,') == 1                   # errors.png (no weights/losses here)
    worst, median = _stills(page)
    # The worst frame is 131 (take index 31), the median one ranks 21st: each still is that frame of qa.mp4
    # (camera 0's tile, below its label).
    assert abs(float(np.median(worst[35:55, 20:140])) - 5 * 31) < 6
    ranked = np.argsort([f["photometric_rms"] for f in report["frames"]], kind="stable")
    assert abs(float(np.median(median[35:55, 20:140])) - 5 * ranked[20]) < 6
    assert "worst frame 131 (00:01:04;11)" in page                        # drop-frame: 00:00:59;28 + 131 frames
    rows = re.findall(r"<tr class=\"([a-z ]*)\">", page)
    assert len(rows) == 40 and rows.count("flagged") == 2 and rows.count("flagged interpolated") == 1
    timecodes = re.findall(r"<tr class=\"[a-z ]*\"><td>\d+</td><td>([0-9:;]+)</td>", page)
    clock = take_timecode(30000 / 1001, "00:00:59;28")
    assert timecodes == [clock.label(clock.parse("00:00:59;28") + f) for f in range(100, 140)]
    assert "cam01 RMS" in page and (out / "errors.png").is_file()


def test_page_renders_in_chromium(review, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium) to render report.html")
    _, _, paths = review
    shot = tmp_path / "report.png"
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1280,1600", f"--screenshot={shot}", paths["html"].as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = matplotlib.image.imread(shot)[..., :3]
    assert image.shape[:2] == (1600, 1280)
    top = image[:60, :600].mean(-1)
    assert (top < 0.3).mean() > 0.01                                       # the heading's dark text
    plot = image[300:900].mean(-1)
    assert plot.std() > 0.05 and (plot < 0.3).mean() > 0.002              # the errors plot drew lines and labels
