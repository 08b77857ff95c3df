"""Takes: reading multi-view frame folders and videos with a bounded cache, and 2D face landmarks."""

from facecap.take.cache import FrameCache
from facecap.take.landmarks import Landmarks2D, detect_landmarks, load_landmarks, save_landmarks
from facecap.take.mediapipe_detector import MULTIPIE68_GROUPS, MediaPipeFaceDetector, mediapipe_to_multipie68
from facecap.take.reader import Take, TakeInfo, open_take, read_take_json

__all__ = ["Take", "TakeInfo", "open_take", "read_take_json", "FrameCache", "Landmarks2D", "detect_landmarks",
           "load_landmarks", "save_landmarks", "MediaPipeFaceDetector", "mediapipe_to_multipie68",
           "MULTIPIE68_GROUPS"]
