"""MediaPipe Face Landmarker (Tasks API) per image, and its 478 points reduced to the Multi-PIE 68 scheme.

The model file is never downloaded here: the user points at a local ``face_landmarker.task``.
"""

import hashlib
import logging
from pathlib import Path

import numpy as np

from facecap.errors import FacecapError

__all__ = ["MediaPipeFaceDetector", "MEDIAPIPE_TO_MULTIPIE68", "MULTIPIE68_GROUPS", "MULTIPIE68_CONFIDENCE",
           "mediapipe_to_multipie68", "model_sha256", "check_model", "MODEL_URL", "NUM_MEDIAPIPE_POINTS"]

log = logging.getLogger(__name__)

MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
             "face_landmarker.task")
NUM_MEDIAPIPE_POINTS = 478
# MediaPipe's normalised coordinates put the image's left edge at 0 and right edge at 1 (pixel corners);
# facecap's pixel centres are integers (docs/formats.md), so x_px = x_norm * width - 0.5.
PIXEL_CENTRE_SHIFT = 0.5

# Multi-PIE / iBUG 68 point -> MediaPipe face-mesh indices, averaged when two are given. Sources:
# - Peizhi Yan, Mediapipe_2_Dlib_Landmarks (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, mp2dlib.py, 2024):
#   brows, eyes, outer lip corners/peaks/bottom, inner lip corners and centres.
# - The "LM68_*" table (MediaPipe 468 -> dlib 68 maps) whose jaw is also yerfor/GeneFacePlusPlus
#   utils/commons/face_alignment_utils.py (listed there right to left): jaw 0-16, nose line 27-30 and
#   nose base 31-35. Its jaw follows the image's jaw more closely than Peizhi Yan's (docs/decisions.md).
# - iBUG's definition for the in-between lip points: outer 49/53 halfway between the corner side and the
#   peak (mean of MediaPipe 40+39 and 270+269), inner 61/63/65/67 halfway between corners and centres
#   (MediaPipe 81, 311, 402, 178, as in the 20-point lip tables used with face_alignment).
# Caveats: the 68-point jawline (0-16) is the image silhouette of the jaw, which slides over the skin as the
# head turns, while MediaPipe's contour points are fixed surface points near it, and a rig's multipie68
# vertices are a third choice; they agree only roughly (hence JAW_CONFIDENCE). Brows differ the same way in
# height (brow ridge versus hair line): trust eyes, mouth and nose most.
MEDIAPIPE_TO_MULTIPIE68: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (132,), (58,), (172,), (150,), (149,), (148,), (152,),                # jaw 0-8
    (377,), (378,), (379,), (397,), (288,), (361,), (454,), (356,),                       # jaw 9-16
    (70,), (63,), (105,), (66,), (107,),                                                  # right brow 17-21
    (336,), (296,), (334,), (293,), (300,),                                               # left brow 22-26
    (168,), (197,), (5,), (4,),                                                           # nose bridge 27-30
    (98,), (97,), (2,), (326,), (327,),                                                   # nose base 31-35
    (33,), (160,), (158,), (133,), (153,), (144,),                                        # right eye 36-41
    (362,), (385,), (387,), (263,), (373,), (380,),                                       # left eye 42-47
    (61,), (40, 39), (37,), (0,), (267,), (270, 269), (291,),                             # outer lip top 48-54
    (321,), (314,), (17,), (84,), (91,),                                                  # outer lip bottom 55-59
    (78,), (81,), (13,), (311,), (308,),                                                  # inner lip top 60-64
    (402,), (14,), (178,),                                                                # inner lip bottom 65-67
)

MULTIPIE68_GROUPS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "mouth": (48, 68)}

# Relative trust of each of the 68 points from this detector: the jawline is a different curve (see above).
JAW_CONFIDENCE = 0.5
MULTIPIE68_CONFIDENCE = np.ones(68)
MULTIPIE68_CONFIDENCE[slice(*MULTIPIE68_GROUPS["jaw"])] = JAW_CONFIDENCE

_PAIRS = np.array([idx if len(idx) == 2 else idx * 2 for idx in MEDIAPIPE_TO_MULTIPIE68])  # [68, 2]


def mediapipe_to_multipie68(points: np.ndarray) -> np.ndarray:
    """[..., 478, D] MediaPipe points -> [..., 68, D] Multi-PIE points (mean of each row's indices)."""
    if points.shape[-2] < NUM_MEDIAPIPE_POINTS - 10:
        raise FacecapError(f"expected MediaPipe's 468 or 478 points on axis -2, got shape {list(points.shape)}")
    return points[..., _PAIRS, :].mean(axis=-2)


def check_model(path: str | Path) -> Path:
    """``path`` as a Path when the model file exists; else an error that says where to get it."""
    path = Path(path)
    if not path.is_file():
        raise FacecapError(f"MediaPipe face landmarker model not found: {path}. facecap never downloads it; "
                           f"get face_landmarker.task from {MODEL_URL} (Apache-2.0) and pass its path")
    return path


def model_sha256(path: Path) -> str:
    """Hex sha256 of the model file, part of the landmark cache key."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MediaPipeFaceDetector:
    """MediaPipe's FaceLandmarker in IMAGE mode, one face: ``detect(rgb_uint8) -> [478, 3] px or None``.

    Output x, y are pixels with facecap's pixel-centre convention; z is MediaPipe's relative depth
    (scaled like x). Use as a context manager, or call ``close()``.
    """

    def __init__(self, model_path: str | Path, min_detection_confidence: float = 0.5,
                 min_presence_confidence: float = 0.5) -> None:
        model_path = check_model(model_path)
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)), running_mode=vision.RunningMode.IMAGE,
            num_faces=1, min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence)
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as err:
            raise FacecapError(f"cannot load MediaPipe model {model_path}: {err}") from err
        self.model_path = model_path

    def detect(self, image: np.ndarray) -> np.ndarray | None:
        """``image`` [H, W, 3] uint8 RGB -> [478, 3] float64 (x px, y px, z) of the first face, or None."""
        import mediapipe as mp
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise FacecapError(f"detector input must be [H, W, 3] uint8 RGB, got {image.dtype} {list(image.shape)}")
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
        if not result.face_landmarks:
            return None
        h, w = image.shape[:2]
        pts = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float64)
        return pts * [w, h, w] - [PIXEL_CENTRE_SHIFT, PIXEL_CENTRE_SHIFT, 0.0]

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "MediaPipeFaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
