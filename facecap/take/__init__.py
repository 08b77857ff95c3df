"""Takes: reading multi-view frame folders and videos with a bounded cache, and 2D face landmarks."""

from facecap.take.cache import FrameCache
from facecap.take.reader import Take, TakeInfo, open_take, read_take_json

__all__ = ["Take", "TakeInfo", "open_take", "read_take_json", "FrameCache"]
