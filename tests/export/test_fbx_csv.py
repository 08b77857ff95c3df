"""animation.csv: columns, units, timecodes, Euler XYZ recomposition (gimbal lock included), read back."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.export import read_fbx_csv, write_fbx_csv
from facecap.geometry.rotations import matrix_from_euler_xyz


def _rotations(rng, n):
    """Uniformly random rotations plus ones at and near the gimbal lock ry = ±90°."""
    near = [matrix_from_euler_xyz([[0.3, ry, -1.1], [2.5, ry, 3.0]])
            for ry in (np.pi / 2, -np.pi / 2, np.pi / 2 - 1e-7, -np.pi / 2 + 1e-9, np.pi / 2 - 1e-4)]
    return np.concatenate([Rotation.random(n, random_state=int(rng.integers(1 << 31))).as_matrix(), *near])


def test_columns_units_and_values(tmp_path, rng):
    anim = Animation(("jawOpen", "eyeBlink_L"), weights=[[0.25, 1.0], [0.0, 0.123456789]],
                     R=np.broadcast_to(np.eye(3), (2, 3, 3)), t=[[10.0, -20.0, 1234.5], [0, 0, 0]], fps=24,
                     units="mm", frames=[5, 6])
    lines = write_fbx_csv(anim, tmp_path / "a.csv").read_text().splitlines()
    assert lines[0] == "frame,time,timecode,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz,jawOpen,eyeBlink_L"
    assert lines[1] == "5,0.208333333,00:00:00:05,1,-2,123.45,0,0,0,25,100"  # mm -> cm, weights in percent
    assert lines[2].endswith(",0,12.3456789")  # at least 6 significant digits


def test_timecode_column_counts_from_the_start_timecode(tmp_path):
    T = 3
    anim = Animation(("a",), np.zeros((T, 1)), np.broadcast_to(np.eye(3), (T, 3, 3)), np.zeros((T, 3)),
                     fps=30000 / 1001, start_timecode="00:00:59;28", frames=[0, 1, 2])
    rows = [line.split(",") for line in write_fbx_csv(anim, tmp_path / "a.csv").read_text().splitlines()[1:]]
    assert [row[2] for row in rows] == ["00:00:59;28", "00:00:59;29", "00:01:00;02"]  # drop-frame at 29.97


def test_euler_recomposes_rotation(tmp_path, rng):
    R = _rotations(rng, 200)
    T = len(R)
    anim = Animation(("a",), np.zeros((T, 1)), R, rng.normal(size=(T, 3)), units="m")
    write_fbx_csv(anim, tmp_path / "r.csv")
    table = np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1, usecols=[0, 1, *range(3, 10)])
    rx, ry, rz = np.radians(table[:, 5:8]).T
    c, s = np.cos, np.sin
    one, zero = np.ones(T), np.zeros(T)
    Rx = np.stack([one, zero, zero, zero, c(rx), -s(rx), zero, s(rx), c(rx)], 1).reshape(T, 3, 3)
    Ry = np.stack([c(ry), zero, s(ry), zero, one, zero, -s(ry), zero, c(ry)], 1).reshape(T, 3, 3)
    Rz = np.stack([c(rz), -s(rz), zero, s(rz), c(rz), zero, zero, zero, one], 1).reshape(T, 3, 3)
    np.testing.assert_allclose(Rz @ Ry @ Rx, R, atol=1e-6)  # FBX eEulerXYZ, composed independently
    np.testing.assert_allclose(table[:, 2:5], anim.t * 100, rtol=1e-8)  # m -> cm


def test_euler_curves_are_continuous(tmp_path, rng):
    """A nod of ±0.2° about a head turned 180° (yaw = roll = 180°) must not flip rx between ±179.8°."""
    T = 41
    nod = np.radians(0.2) * np.sin(np.linspace(0, 4 * np.pi, T))
    turned = matrix_from_euler_xyz(np.array([np.pi, 0.0, np.pi]))
    R = turned @ matrix_from_euler_xyz(np.stack([nod, np.zeros(T), np.zeros(T)], axis=1))
    anim = Animation(("a",), np.zeros((T, 1)), R, np.zeros((T, 3)))
    write_fbx_csv(anim, tmp_path / "n.csv")
    euler = np.loadtxt(tmp_path / "n.csv", delimiter=",", skiprows=1, usecols=[6, 7, 8])
    assert np.abs(np.diff(euler, axis=0)).max() < 0.1                # degrees a frame: the nod's own speed
    assert np.ptp(euler[:, 0]) == pytest.approx(0.4, abs=1e-6)        # rx sweeps the nod, no turn
    np.testing.assert_allclose(read_fbx_csv(tmp_path / "n.csv").R, R, atol=1e-7)  # 9 digits of ~180°


def test_read_back(tmp_path, rng):
    R = _rotations(rng, 20)
    T = len(R)
    anim = Animation(("jawOpen", "mouthFunnel"), rng.uniform(size=(T, 2)), R, rng.normal(size=(T, 3)) * 500,
                     fps=60.0, units="mm", frames=np.arange(3, 3 + T))
    back = read_fbx_csv(write_fbx_csv(anim, tmp_path / "a.csv"), units="mm")
    assert back.shape_names == anim.shape_names and back.fps == pytest.approx(60.0)
    np.testing.assert_array_equal(back.frames, anim.frames)
    np.testing.assert_allclose(back.R, anim.R, atol=1e-6)
    np.testing.assert_allclose(back.t, anim.t, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(back.weights, anim.weights, atol=1e-9)
    assert read_fbx_csv(tmp_path / "a.csv", units="cm").t[0] == pytest.approx(anim.t[0] / 10)


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("frame,time,x\n", "header must start with"),
    ("frame,time,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz,a\n0,0,0,0,0,0,0,0\n", "row 2 has 8 columns"),
    ("frame,time,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz,a\n0,0,0,0,0,0,0,0,x\n", "not a number"),
    ("frame,time,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz,a\n0.5,0,0,0,0,0,0,0,1\n", "'frame' must hold"),
    ("frame,time,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz,a\n0,0,0,0,nan,0,0,0,1\n", "NaN"),
])
def test_reader_errors(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(FormatError, match=rf"bad\.csv: .*{match}"):
        read_fbx_csv(tmp_path / "bad.csv")
    with pytest.raises(FormatError, match="not found"):
        read_fbx_csv(tmp_path / "none.csv")
