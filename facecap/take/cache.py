"""A bounded least-recently-used cache of decoded frames, so long takes stream in bounded memory."""

import threading
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

from facecap.errors import ConfigError

__all__ = ["FrameCache"]


class FrameCache:
    """At most ``capacity`` frames (any cameras), evicting the least recently used.

    Frames are kept as their sources store them (uint8 for 8-bit media: a quarter of float32), and
    marked read-only so that a caller cannot change a cached frame by accident. Threads may share it
    (the fit reads cameras in parallel); a frame is loaded outside the lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"cache_frames must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached frames."""
        with self._lock:
            return sum(a.nbytes for a in self._items.values())

    def get(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The frame under ``key``, calling ``load()`` on a miss and evicting beyond the capacity."""
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self.hits += 1
                self._items.move_to_end(key)
                return frame
            self.misses += 1
        frame = load()
        frame.flags.writeable = False
        with self._lock:
            self._items[key] = frame
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return frame

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
