"""FBX-ready CSV, animation.csv (docs/formats.md §5): one row a frame, head pose then shape weights.

Columns: ``frame,time,timecode,head_tx,head_ty,head_tz,head_rx,head_ry,head_rz``, then one a shape.
The timecode is the frame's SMPTE timecode (:mod:`facecap.export.timecode`). Translation is in
centimetres (FBX's default unit), rotation is Euler XYZ in degrees in FBX's eEulerXYZ order
(``R = Rz @ Ry @ Rx``), continuous over the take (no jump of a turn between frames), weights are FBX
DeformPercent (0 to 100). The reader also takes tables without the timecode column.
"""

import csv
import logging
import warnings
from pathlib import Path

import numpy as np

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.export.head import continuous_euler
from facecap.export.timecode import Timecode, take_timecode
from facecap.geometry.rotations import euler_xyz_from_matrix, matrix_from_euler_xyz
from facecap.units import unit_scale

__all__ = ["FBX_CSV_HEAD_COLUMNS", "TIMECODE_COLUMN", "write_fbx_csv", "read_fbx_csv"]

log = logging.getLogger(__name__)

FBX_CSV_HEAD_COLUMNS = ("frame", "time", "head_tx", "head_ty", "head_tz", "head_rx", "head_ry", "head_rz")
TIMECODE_COLUMN = "timecode"  # written after "time"
FBX_UNITS = "cm"
PERCENT = 100.0
# 9 significant digits: docs/formats.md §5 asks for at least 6; 9 keeps degrees to 1e-6 and float32 values exact.
_NUMBER_FORMAT = "%.9g"
_DEFAULT_FPS = 30.0


def write_fbx_csv(anim: Animation, path: str | Path, timecode: Timecode | None = None) -> Path:
    """Write ``anim`` as animation.csv; ``t`` is converted from ``anim.units`` to centimetres.

    ``timecode`` defaults to :func:`take_timecode` of the animation's fps and start timecode.
    """
    path = Path(path)
    timecode = take_timecode(anim.fps, anim.start_timecode) if timecode is None else timecode
    start = timecode.parse(anim.start_timecode)
    t_cm = anim.t * unit_scale(anim.units, FBX_UNITS)
    with warnings.catch_warnings():
        # At gimbal lock (ry = ±90°) scipy sets rz to 0 and warns; the angles still recompose R.
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        euler_deg = np.degrees(continuous_euler(euler_xyz_from_matrix(anim.R)))
    pose = np.concatenate([t_cm, euler_deg, anim.weights * PERCENT], axis=1)
    header = ",".join(FBX_CSV_HEAD_COLUMNS[:2] + (TIMECODE_COLUMN,) + FBX_CSV_HEAD_COLUMNS[2:] + anim.shape_names)
    rows = [f"{frame},{_NUMBER_FORMAT % time},{timecode.label(start + frame)},"
            + ",".join(_NUMBER_FORMAT % v for v in row)
            for frame, time, row in zip(anim.frame_numbers, anim.times, pose)]
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
    """Read animation.csv back into an Animation with ``t`` in ``units`` (the head pose in the file's frame).

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
    if header[2:3] == (TIMECODE_COLUMN,):                      # the timecode is text: leave it out
        header = header[:2] + header[3:]
        rows = [row[:2] + row[3:] for row in rows]
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
