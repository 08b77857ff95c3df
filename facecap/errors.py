"""The errors facecap raises for bad input, so that callers can catch them apart from bugs."""

from pathlib import Path

__all__ = ["FacecapError", "ConfigError", "FormatError", "ShapeError", "FrameError", "MissingFrameError",
           "DamagedFrameError"]


class FacecapError(Exception):
    """Base class: a problem with the user's input that the message explains."""


class ConfigError(FacecapError, ValueError):
    """A config key is unknown, has the wrong type, or holds an impossible value."""


class FormatError(FacecapError, ValueError):
    """A file does not follow its format (docs/formats.md); the message names the file and key."""


class ShapeError(FacecapError, ValueError):
    """An array or tensor has the wrong shape; the message gives expected versus got."""


class FrameError(FacecapError):
    """One camera's view of one frame cannot be used; the other views of the frame may still be.

    Attributes:
        camera: the camera's name.
        source_index: the camera's file or video frame index (take.json's frame_offset applied).
        path: the frame's file, or the camera's video or folder.
        reason: what is wrong, in words.
        frame: the take frame index (counted from frame_range's start), or None where the source was
            read directly; :meth:`facecap.take.reader.Take.frame_raw` fills it in.
    """

    def __init__(self, camera: str, source_index: int, path: Path, reason: str, frame: int | None = None) -> None:
        super().__init__(camera, source_index, path, reason, frame)
        self.camera, self.source_index, self.path, self.reason, self.frame = camera, source_index, path, reason, frame

    def __str__(self) -> str:
        frame = "" if self.frame is None else f"take frame {self.frame}, "
        return f"camera '{self.camera}' ({frame}file frame {self.source_index}): {self.path}: {self.reason}"


class MissingFrameError(FrameError):
    """The camera has no file for this frame (a gap in its numbered files, or past a video's end)."""


class DamagedFrameError(FrameError):
    """The frame's file or video data is truncated or corrupt: it is not decoded to a made-up image."""
