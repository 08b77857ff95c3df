"""Live Link Face CSV, livelink.csv (docs/formats.md §6), the table Unreal's Live Link Face app records.

Name mapping: a rig name matches an ARKit name ignoring case, with ``_L``/``_R`` (or ``_Left``/
``_Right``) suffixes read as ``Left``/``Right`` (``eyeBlink_L`` -> ``EyeBlinkLeft``). ARKit's single
``BrowInnerUp`` and ``CheekPuff`` are the mean of the rig's left and right halves when it splits them.

Timecode: ``HH:MM:SS:FF.mmm`` counted from ``start_timecode`` at the take's fps, non-drop-frame,
with ``round(fps)`` frames a second. We read ``.mmm`` as the sub-frame (thousandths of a frame, as
in Unreal's ``FQualifiedFrameTime`` subframe), not milliseconds: rows at whole frames have ``.000``.

Head angles: ``R_head = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` (intrinsic Y-X'-Z'', about the head's up,
side and forward axes), in radians.
"""

import logging
import re
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from facecap.animation import TIMECODE_PATTERN, Animation
from facecap.errors import FormatError

__all__ = ["LIVELINK_HEADER", "ARKIT_SHAPES", "BLENDSHAPE_COUNT", "livelink_mapping", "livelink_weights",
           "head_yaw_pitch_roll", "matrix_from_yaw_pitch_roll", "parse_timecode", "format_timecode",
           "frame_timecode", "write_livelink_csv"]

log = logging.getLogger(__name__)

LIVELINK_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll")
_COLUMNS = LIVELINK_HEADER.split(",")
ARKIT_SHAPES: tuple[str, ...] = tuple(_COLUMNS[2:_COLUMNS.index("HeadYaw")])  # the 52 blendshapes
BLENDSHAPE_COUNT = len(_COLUMNS) - 2  # 61: 52 shapes + 3 head + 6 eye angles
_EYE_ANGLES = 6
_SPLIT_SHAPES = ("BrowInnerUp", "CheekPuff")
_SIDE_SUFFIX = re.compile(r"(?:_|\.)(l|r|left|right)$")
_WEIGHT_FORMAT = "%.10f"


def _canonical(name: str) -> str:
    """Lower-case name with any side suffix spelled 'left'/'right': 'eyeBlink_L' -> 'eyeblinkleft'."""
    lower = name.lower()
    match = _SIDE_SUFFIX.search(lower)
    if match:
        side = {"l": "left", "r": "right"}.get(match.group(1), match.group(1))
        lower = lower[:match.start()] + side
    return lower


def livelink_mapping(shape_names: tuple[str, ...] | list[str]) -> list[list[int]]:
    """For each of the 52 ARKit shapes, the rig shape indices whose mean drives it ([] = absent, 0).

    Raises FormatError naming the rig shapes that map to no ARKit name, or two rig names that
    map to the same one.
    """
    lookup = {name.lower(): i for i, name in enumerate(ARKIT_SHAPES)}
    for split in _SPLIT_SHAPES:
        lookup[split.lower() + "left"] = lookup[split.lower() + "right"] = lookup[split.lower()]
    sources: list[list[int]] = [[] for _ in ARKIT_SHAPES]
    claimed: dict[str, str] = {}
    unmapped = []
    for k, name in enumerate(shape_names):
        key = _canonical(name)
        if key not in lookup:
            unmapped.append(name)
            continue
        if key in claimed:
            raise FormatError(f"Live Link export: rig shapes {claimed[key]!r} and {name!r} both map to "
                              f"ARKit {ARKIT_SHAPES[lookup[key]]!r}")
        claimed[key] = name
        sources[lookup[key]].append(k)
    if unmapped:
        raise FormatError(f"Live Link export: rig shapes {', '.join(unmapped)} match no ARKit name "
                          f"(case and _L/_R versus Left/Right suffixes are ignored)")
    for split in _SPLIT_SHAPES:
        j = ARKIT_SHAPES.index(split)
        if split.lower() in claimed and len(sources[j]) > 1:
            raise FormatError(f"Live Link export: the rig has {split} both whole and split into halves")
    return sources


def livelink_weights(anim: Animation) -> np.ndarray:
    """[T, 52] ARKit weights in ARKit column order, clipped to [0, 1]."""
    sources = livelink_mapping(anim.shape_names)
    out = np.zeros((anim.num_frames, len(ARKIT_SHAPES)))
    for j, ks in enumerate(sources):
        if ks:
            out[:, j] = anim.weights[:, ks].mean(axis=1)
    return np.clip(out, 0.0, 1.0)


def head_yaw_pitch_roll(R: np.ndarray) -> np.ndarray:
    """[..., 3, 3] head rotations to [..., 3] (yaw, pitch, roll) radians, ``R = Ry(yaw) Rx(pitch) Rz(roll)``."""
    R = np.asarray(R, dtype=np.float64)
    # scipy's upper-case "YXZ" is intrinsic: the matrix is Ry(a) @ Rx(b) @ Rz(c). At gimbal lock
    # (pitch = ±90°) it sets roll to 0 and warns; the angles still recompose R.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("YXZ").reshape(*R.shape[:-2], 3)


def matrix_from_yaw_pitch_roll(angles: np.ndarray) -> np.ndarray:
    """[..., 3] (yaw, pitch, roll) radians to [..., 3, 3] ``Ry(yaw) @ Rx(pitch) @ Rz(roll)``."""
    angles = np.asarray(angles, dtype=np.float64)
    return Rotation.from_euler("YXZ", angles.reshape(-1, 3)).as_matrix().reshape(*angles.shape[:-1], 3, 3)


def _timecode_rate(fps: float) -> int:
    return max(1, int(round(fps)))


def parse_timecode(timecode: str, fps: float) -> int:
    """'HH:MM:SS:FF' to a frame count at ``round(fps)`` frames a second (non-drop-frame)."""
    if not TIMECODE_PATTERN.match(timecode):
        raise FormatError(f"timecode must look like HH:MM:SS:FF, got {timecode!r}")
    hh, mm, ss, ff = (int(x) for x in re.split("[:;]", timecode))
    rate = _timecode_rate(fps)
    if mm >= 60 or ss >= 60 or ff >= rate:
        raise FormatError(f"timecode {timecode!r} is out of range at {rate} frames a second")
    return ((hh * 60 + mm) * 60 + ss) * rate + ff


def format_timecode(frame: float, fps: float) -> str:
    """A frame count (sub-frames allowed) to 'HH:MM:SS:FF.mmm', .mmm in thousandths of a frame."""
    rate = _timecode_rate(fps)
    milli = int(round(frame * 1000))
    whole, sub = divmod(milli, 1000)
    seconds, ff = divmod(whole, rate)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh % 24:02d}:{mm:02d}:{ss:02d}:{ff:02d}.{sub:03d}"


def frame_timecode(start_timecode: str, frame: float, fps: float) -> str:
    """The timecode of ``frame`` frames after ``start_timecode``: (00:40:28:09, 25, 30) -> 00:40:29:04.000."""
    return format_timecode(parse_timecode(start_timecode, fps) + frame, fps)


def write_livelink_csv(anim: Animation, path: str | Path) -> Path:
    """Write livelink.csv; raises FormatError (before writing) when the shape names don't map."""
    weights = livelink_weights(anim)
    head = head_yaw_pitch_roll(anim.R)
    values = np.concatenate([weights, head, np.zeros((anim.num_frames, _EYE_ANGLES))], axis=1)
    rows = [f"{frame_timecode(anim.start_timecode, int(f), anim.fps)},{BLENDSHAPE_COUNT},"
            + ",".join(_WEIGHT_FORMAT % v for v in row) for f, row in zip(anim.frame_numbers, values)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([LIVELINK_HEADER, *rows]) + "\n", encoding="utf-8")
    log.info("wrote %s (%d frames)", path, anim.num_frames)
    return path
