"""Live Link Face CSV, livelink.csv (docs/formats.md §6), the table Unreal's Live Link Face app records.

Name mapping: a rig name matches an ARKit name ignoring case, with ``_L``/``_R`` (or ``_Left``/
``_Right``) suffixes read as ``Left``/``Right`` (``eyeBlink_L`` -> ``EyeBlinkLeft``). ARKit's single
``BrowInnerUp`` and ``CheekPuff`` are the mean of the rig's left and right halves when it splits them.
Rig shapes that match no ARKit name are left out with a warning; ARKit shapes the rig lacks are 0.
A name map (:mod:`facecap.export.names`) renames the rig's shapes first.

Timecode: ``HH:MM:SS:FF.mmm`` counted from ``start_timecode`` (:mod:`facecap.export.timecode`;
drop-frame ``HH:MM:SS;FF.mmm``). We read ``.mmm`` as the sub-frame (thousandths of a frame, as in
Unreal's ``FQualifiedFrameTime`` subframe), not milliseconds: rows at whole frames have ``.000``.

Head angles: ``R_head = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` (intrinsic Y-X'-Z'', about the head's up,
side and forward axes), in radians, continuous over the take. With the rig's axes (y up, z where the
face looks, x to the performer's left) a positive yaw turns the face to the performer's left and a
positive pitch tilts it down.

Eye angles, in radians, use the same axes and signs: a positive yaw turns an eye's gaze to the
performer's left, a positive pitch down; roll is 0. They come from the eyeLook weights, linearly:
``LeftEyeYaw = out · EyeLookOutLeft - in · EyeLookInLeft``, ``RightEyeYaw = in · EyeLookInRight -
out · EyeLookOutRight``, ``EyePitch = down · EyeLookDown - up · EyeLookUp`` per eye, with the angles
at weight 1 of :class:`facecap.export.config.EyeGaze`.
"""

import logging
import re
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.export.config import EyeGaze
from facecap.export.head import continuous_euler
from facecap.export.timecode import Timecode, take_timecode

__all__ = ["LIVELINK_HEADER", "ARKIT_SHAPES", "BLENDSHAPE_COUNT", "livelink_mapping", "livelink_weights",
           "head_yaw_pitch_roll", "matrix_from_yaw_pitch_roll", "eye_angles", "write_livelink_csv"]

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


def livelink_mapping(shape_names: tuple[str, ...] | list[str]) -> tuple[list[list[int]], list[str]]:
    """For each of the 52 ARKit shapes, the rig shape indices whose mean drives it ([] = absent, 0), and
    the rig shapes that map to no ARKit name.

    Raises FormatError where two rig names map to the same ARKit name, or a split shape comes both
    whole and in halves.
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
    for split in _SPLIT_SHAPES:
        j = ARKIT_SHAPES.index(split)
        if split.lower() in claimed and len(sources[j]) > 1:
            raise FormatError(f"Live Link export: the rig has {split} both whole and split into halves")
    return sources, unmapped


def livelink_weights(anim: Animation) -> np.ndarray:
    """[T, 52] ARKit weights in ARKit column order, clipped to [0, 1]; warns about the rig shapes left out."""
    sources, unmapped = livelink_mapping(anim.shape_names)
    if unmapped:
        log.warning("livelink.csv: %d rig shapes match no ARKit name and are left out: %s (case and _L/_R versus "
                    "Left/Right suffixes are ignored; a name map, export.name_map, can rename them)",
                    len(unmapped), ", ".join(unmapped))
    out = np.zeros((anim.num_frames, len(ARKIT_SHAPES)))
    for j, ks in enumerate(sources):
        if ks:
            out[:, j] = anim.weights[:, ks].mean(axis=1)
    return np.clip(out, 0.0, 1.0)


def eye_angles(arkit: np.ndarray, gaze: EyeGaze) -> np.ndarray:
    """[T, 6] (LeftEyeYaw, LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll) radians
    from [T, 52] ARKit weights (the module docstring gives the mapping and its signs)."""
    def w(name: str) -> np.ndarray:
        return arkit[:, ARKIT_SHAPES.index(name)]
    out_, in_, up, down = (np.radians(a) for a in (gaze.out_deg, gaze.in_deg, gaze.up_deg, gaze.down_deg))
    zero = np.zeros(len(arkit))
    return np.stack([out_ * w("EyeLookOutLeft") - in_ * w("EyeLookInLeft"),
                     down * w("EyeLookDownLeft") - up * w("EyeLookUpLeft"), zero,
                     in_ * w("EyeLookInRight") - out_ * w("EyeLookOutRight"),
                     down * w("EyeLookDownRight") - up * w("EyeLookUpRight"), zero], axis=1)


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


def write_livelink_csv(anim: Animation, path: str | Path, timecode: Timecode | None = None,
                       gaze: EyeGaze | None = None) -> Path:
    """Write livelink.csv from ``anim`` (its head pose in the frame to deliver).

    ``timecode`` defaults to :func:`take_timecode` of the animation's fps and start timecode, ``gaze`` to
    :class:`EyeGaze`'s defaults. Raises FormatError (before writing) where two rig names claim one ARKit name.
    """
    timecode = take_timecode(anim.fps, anim.start_timecode) if timecode is None else timecode
    weights = livelink_weights(anim)
    head = continuous_euler(head_yaw_pitch_roll(anim.R))
    values = np.concatenate([weights, head, eye_angles(weights, gaze or EyeGaze())], axis=1)
    start = timecode.parse(anim.start_timecode)
    rows = [f"{timecode.label_with_subframe(start + int(f))},{BLENDSHAPE_COUNT},"
            + ",".join(_WEIGHT_FORMAT % v for v in row) for f, row in zip(anim.frame_numbers, values)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([LIVELINK_HEADER, *rows]) + "\n", encoding="utf-8")
    log.info("wrote %s (%d frames)", path, anim.num_frames)
    return path
