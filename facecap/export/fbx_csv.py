"""FBX-ready CSV, animation.csv (docs/formats.md §5): one row a frame, head pose then shape weights.

Translation is in centimetres (FBX's default unit), rotation is Euler XYZ in degrees in FBX's
eEulerXYZ order (``R = Rz @ Ry @ Rx``), weights are FBX DeformPercent (0 to 100).
"""

import csv
import logging
import warnings
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.geometry.rotations import euler_xyz_from_matrix, matrix_from_euler_xyz
from facecap.units import unit_scale

__all__ = ["FBX_CSV_HEAD_COLUMNS", "write_fbx_csv", "read_fbx_csv"]

log = logging.getLogger(__name__)

FBX_CSV_HEAD_COLUMNS = ("frame", "time", "head_tx", "head_ty", "head_tz", "head_rx", "head_ry", "head_rz")
FBX_UNITS = "cm"
PERCENT = 100.0
# 9 significant digits: docs/formats.md §5 asks for at least 6; 9 keeps degrees to 1e-6 and float32 values exact.
_NUMBER_FORMAT = "%.9g"
_DEFAULT_FPS = 30.0


def write_fbx_csv(anim: Animation, path: str | Path) -> Path:
    """Write ``anim`` as animation.csv; ``t`` is converted from ``anim.units`` to centimetres."""
    path = Path(path)
    t_cm = anim.t * unit_scale(anim.units, FBX_UNITS)
    with warnings.catch_warnings():
        # At gimbal lock (ry = ±90°) scipy sets rz to 0 and warns; the angles still recompose R.
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        euler_deg = np.degrees(euler_xyz_from_matrix(anim.R))
    table = np.concatenate([anim.times[:, None], t_cm, euler_deg, anim.weights * PERCENT], axis=1)
    header = ",".join(FBX_CSV_HEAD_COLUMNS + anim.shape_names)
    rows = [f"{frame}," + ",".join(_NUMBER_FORMAT % v for v in row)
            for frame, row in zip(anim.frame_numbers, table)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    log.info("wrote %s (%d frames)", path, anim.num_frames)
    return path


def _infer_fps(frames: np.ndarray, times: np.ndarray) -> float:
    moving = np.abs(times) > 0
    if not moving.any():
        return _DEFAULT_FPS
    return float(np.median(frames[moving] / times[moving]))


def read_fbx_csv(path: str | Path, units: str = "mm", fps: float | None = None) -> Animation:
    """Read animation.csv back into an Animation with ``t`` in ``units``.

    ``fps`` defaults to frame / time of the rows (30 when every time is 0). Weights come back in
    [0, 1]. Raises FormatError naming the file, row and column on a malformed table.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"animation CSV not found: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise FormatError(f"{path}: empty file, expected a header row")
    header = tuple(rows[0])
    if header[:len(FBX_CSV_HEAD_COLUMNS)] != FBX_CSV_HEAD_COLUMNS:
        raise FormatError(f"{path}: header must start with {','.join(FBX_CSV_HEAD_COLUMNS)}, "
                          f"got {','.join(header[:len(FBX_CSV_HEAD_COLUMNS)])}")
    names = header[len(FBX_CSV_HEAD_COLUMNS):]
    body = rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise FormatError(f"{path}: row {i + 2} has {len(row)} columns, header has {len(header)}")
    try:
        table = np.array(body, dtype=np.float64).reshape(len(body), len(header))
    except ValueError as err:
        raise FormatError(f"{path}: a value is not a number ({err})") from None
    if not np.isfinite(table).all():
        raise FormatError(f"{path}: holds NaN or infinite values")
    frames = table[:, 0]
    if not np.array_equal(frames, np.round(frames)):
        raise FormatError(f"{path}: column 'frame' must hold integers")
    frames = frames.astype(np.int64)
    fps = _infer_fps(frames, table[:, 1]) if fps is None else fps
    plain = np.array_equal(frames, np.arange(len(frames)))
    return Animation(shape_names=names, weights=table[:, 8:] / PERCENT,
                     R=matrix_from_euler_xyz(np.radians(table[:, 5:8])),
                     t=table[:, 2:5] * unit_scale(FBX_UNITS, units), fps=fps, units=units,
                     frames=None if plain else frames)
