"""The errors facecap raises for bad input, so that callers can catch them apart from bugs."""

__all__ = ["FacecapError", "ConfigError", "FormatError", "ShapeError"]


class FacecapError(Exception):
    """Base class: a problem with the user's input that the message explains."""


class ConfigError(FacecapError, ValueError):
    """A config key is unknown, has the wrong type, or holds an impossible value."""


class FormatError(FacecapError, ValueError):
    """A file does not follow its format (docs/formats.md); the message names the file and key."""


class ShapeError(FacecapError, ValueError):
    """An array or tensor has the wrong shape; the message gives expected versus got."""
