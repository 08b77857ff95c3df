"""SMPTE timecode of a take's frames, non-drop-frame and drop-frame (SMPTE ST 12-1).

A timecode counts ``nominal`` frames a second: the take's fps rounded (30 at 29.97). At the NTSC
rates 29.97 and 59.94 (30000/1001, 60000/1001) such a count runs slow against the clock by 3.6 s an
hour; drop-frame timecode skips the labels ``;00`` and ``;01`` (``;00`` to ``;03`` at 59.94) at the start
of every minute except minutes 0, 10, 20, ..., so that one hour of frames (107892 at 29.97) reads
``01:00:00;00``. Drop-frame timecodes are written with ``;`` before the frames, non-drop with ``:``.
"""

import math
import re
from dataclasses import dataclass
from typing import Literal

from facecap.errors import ConfigError, FormatError

__all__ = ["TimecodeMode", "Timecode", "is_ntsc_rate", "take_timecode"]

TimecodeMode = Literal["auto", "drop-frame", "non-drop-frame"]

_PATTERN = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;])(\d{2})$")
_NTSC_DENOMINATOR = 1.001
_NTSC_TOLERANCE = 2e-3          # fps within this of 30000/1001 or 60000/1001 is an NTSC rate (29.97 counts)
_DROP_PER_30 = 2                # labels dropped a minute per 30 nominal frames a second
_HOURS_A_DAY = 24


def is_ntsc_rate(fps: float) -> bool:
    """True at 29.97 and 59.94 fps (30000/1001, 60000/1001), the rates drop-frame timecode is for."""
    nominal = round(fps * _NTSC_DENOMINATOR)
    return nominal in (30, 60) and abs(fps - nominal / _NTSC_DENOMINATOR) < _NTSC_TOLERANCE


@dataclass(frozen=True)
class Timecode:
    """A timecode clock: ``nominal`` frame labels a second, drop-frame or not.

    Attributes:
        nominal: frames a timecode second counts (round(fps): 24, 25, 30, 60, ...).
        drop_frame: whether labels are dropped (SMPTE drop-frame; nominal 30 or 60 only).
    """

    nominal: int
    drop_frame: bool = False

    def __post_init__(self) -> None:
        if self.nominal < 1:
            raise ConfigError(f"a timecode needs at least 1 frame a second, got {self.nominal}")
        if self.drop_frame and self.nominal not in (30, 60):
            raise ConfigError(f"drop-frame timecode exists at 29.97 and 59.94 fps only, not at {self.nominal} "
                              "frames a second")

    @property
    def _dropped(self) -> int:
        """Labels dropped at the start of each minute not divisible by 10 (2 at 29.97, 4 at 59.94)."""
        return _DROP_PER_30 * self.nominal // 30 if self.drop_frame else 0

    @property
    def separator(self) -> str:
        return ";" if self.drop_frame else ":"

    def parse(self, timecode: str) -> int:
        """'HH:MM:SS:FF' (or ';FF') to the number of frames since 00:00:00:00."""
        match = _PATTERN.match(timecode)
        if not match:
            raise FormatError(f"timecode must look like HH:MM:SS:FF, got {timecode!r}")
        hh, mm, ss, _, ff = match.groups()
        hh, mm, ss, ff = int(hh), int(mm), int(ss), int(ff)
        if mm >= 60 or ss >= 60 or ff >= self.nominal:
            raise FormatError(f"timecode {timecode!r} is out of range at {self.nominal} frames a second")
        if self.drop_frame and ss == 0 and mm % 10 and ff < self._dropped:
            raise FormatError(f"timecode {timecode!r} does not exist in drop-frame timecode (labels 00 to "
                              f"{self._dropped - 1:02d} are dropped at minutes not divisible by 10)")
        minutes = hh * 60 + mm
        labels = (minutes * 60 + ss) * self.nominal + ff
        return labels - self._dropped * (minutes - minutes // 10)

    def label(self, frame: int) -> str:
        """The timecode of whole ``frame`` frames since 00:00:00:00 (hours wrap at 24)."""
        labels = int(frame)
        if self._dropped:
            # Andrew Duncan's arithmetic: add back the labels dropped before this frame.
            per_ten = self.nominal * 600 - 9 * self._dropped          # frames in ten minutes
            per_minute = self.nominal * 60 - self._dropped             # frames in a dropping minute
            tens, rest = divmod(labels, per_ten)
            labels += 9 * self._dropped * tens
            if rest >= self._dropped:
                labels += self._dropped * ((rest - self._dropped) // per_minute)
        seconds, ff = divmod(labels, self.nominal)
        minutes, ss = divmod(seconds, 60)
        hh, mm = divmod(minutes, 60)
        return f"{hh % _HOURS_A_DAY:02d}:{mm:02d}:{ss:02d}{self.separator}{ff:02d}"

    def label_with_subframe(self, frame: float) -> str:
        """'HH:MM:SS:FF.mmm': the timecode of a frame count, ``.mmm`` its fraction in thousandths of a frame."""
        milli = int(round(frame * 1000))
        whole, sub = divmod(milli, 1000)
        return f"{self.label(whole)}.{sub:03d}"


def take_timecode(fps: float, start_timecode: str, mode: TimecodeMode = "auto") -> Timecode:
    """The timecode clock of a take: ``auto`` is drop-frame at the NTSC rates (29.97, 59.94) or where the
    start timecode is written with ``;``, else non-drop-frame; the other modes force one."""
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps}")
    nominal = max(1, round(fps))
    if mode == "drop-frame":
        drop = True
    elif mode == "non-drop-frame":
        drop = False
    elif mode == "auto":
        drop = is_ntsc_rate(fps) or start_timecode[8:9] == ";"
    else:
        raise ConfigError(f"timecode mode must be auto, drop-frame or non-drop-frame, got {mode!r}")
    if drop and not is_ntsc_rate(fps):
        raise ConfigError(f"drop-frame timecode is for 29.97 and 59.94 fps; the take runs at {fps:g} fps "
                          f"(start timecode {start_timecode!r})")
    return Timecode(nominal, drop)
