"""Image sources (folders, order pairing, video sampling) and the robust Levenberg-Marquardt solver."""

import cv2
import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.sparse import csr_matrix

from facecap.calibrate.lm import levenberg_marquardt, robust_rho
from facecap.calibrate.sources import natural_key, open_sources
from facecap.errors import FacecapError, FormatError


def _write(folder, names, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        cv2.imwrite(str(folder / n), np.full(size[::-1], 100, np.uint8))


def test_folders_pair_by_name_or_order(tmp_path):
    _write(tmp_path / "a", ["img2.png", "img10.png"])
    _write(tmp_path / "b", ["img10.png", "img2.png"])
    a, b = open_sources([str(tmp_path / "a"), str(tmp_path / "b")])
    assert a.keys == b.keys == ("img2", "img10")
    _write(tmp_path / "c", ["x1.png", "x2.png"])
    a, c = open_sources([str(tmp_path / "a"), str(tmp_path / "c")])
    assert a.keys == c.keys == ("000000", "000001")
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def test_a_truncated_board_image_is_an_error_naming_it(tmp_path):
    (tmp_path / "a").mkdir()
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8), (5, 5), 2)
    cv2.imwrite(str(tmp_path / "a" / "f1.jpg"), image)
    data = (tmp_path / "a" / "f1.jpg").read_bytes()
    (tmp_path / "a" / "f2.jpg").write_bytes(data[:len(data) // 2])
    (src,) = open_sources([str(tmp_path / "a")])
    frames = src.frames()
    key, _, grey = next(frames)
    reference = cv2.imread(str(tmp_path / "a" / "f1.jpg"), cv2.IMREAD_GRAYSCALE)       # libjpeg's own grey
    assert key == "f1" and np.abs(grey.astype(int) - reference).max() <= 1
    with pytest.raises(FormatError, match=r"camera 'a': cannot read image .*f2\.jpg: truncated or corrupt JPEG"):
        next(frames)


def test_video_is_sampled_and_streamed(tmp_path):
    path = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(25):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    (src,) = open_sources([str(path)], video_step=10)
    frames = list(src.frames())
    assert src.name == "cam" and [k for k, _, _ in frames] == ["000000", "000010", "000020"]
    assert frames[2][2].shape == (48, 64) and abs(int(frames[2][2].mean()) - 200) < 10


@pytest.mark.parametrize("specs, names, match", [
    (["/nonexistent/folder"], None, "is not a folder, a glob pattern"),
    (["/nonexistent/*.png"], None, "no images match"),
    (["a", "b"], ["x"], "1 camera names for 2 sources"),
])
def test_bad_sources_raise(specs, names, match):
    with pytest.raises(FacecapError, match=match):
        open_sources(specs, names)


def test_duplicate_camera_names_raise(tmp_path):
    _write(tmp_path / "one" / "cam", ["1.png"])
    _write(tmp_path / "two" / "cam", ["1.png"])
    with pytest.raises(FacecapError, match="camera names must be unique"):
        open_sources([str(tmp_path / "one" / "cam"), str(tmp_path / "two" / "cam")])


@pytest.mark.parametrize("loss", ["linear", "huber", "soft_l1", "cauchy"])
def test_rho_matches_scipy(loss):
    # scipy's least_squares reports cost = 0.5 * sum(rho(f^2)); compare through a 1-residual problem.
    z = np.array([0.25, 4.0])
    for zi, rho in zip(z, robust_rho(z, loss)[0]):
        sol = least_squares(lambda x: np.array([np.sqrt(zi) + 0 * x[0]]), [0.0], loss=loss, max_nfev=1)
        assert 2 * sol.cost == pytest.approx(rho)


def test_lm_fits_a_line_robustly(rng):
    # points (t, 2 t + 1) with one gross outlier: the Cauchy loss ignores it, the linear loss does not.
    t = np.linspace(0, 1, 20)
    y = 2 * t + 1 + rng.normal(0, 0.01, t.size)
    y[5] += 5.0
    fun = lambda p: np.stack([p[0] * t + p[1] - y, np.zeros_like(t)], axis=1).ravel()  # noqa: E731
    jac = lambda p: csr_matrix(np.stack([np.stack([t, np.ones_like(t)], 1), np.zeros((t.size, 2))], 1)  # noqa: E731
                               .reshape(-1, 2))
    robust = levenberg_marquardt(fun, jac, np.zeros(2), loss="cauchy", scale=0.05)
    plain = levenberg_marquardt(fun, jac, np.zeros(2), loss="linear")
    np.testing.assert_allclose(robust.x, [2, 1], atol=0.03)
    assert abs(plain.x[1] - 1) > 0.1
