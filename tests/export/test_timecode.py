"""SMPTE timecode: non-drop-frame arithmetic, drop-frame against SMPTE's known labels and the wall clock."""

import numpy as np
import pytest

from facecap.errors import ConfigError, FormatError
from facecap.export.timecode import Timecode, is_ntsc_rate, take_timecode

NTSC_30 = 30000 / 1001
NTSC_60 = 60000 / 1001


@pytest.mark.parametrize("start, frame, fps, expected", [
    ("00:40:28:09", 25, 30, "00:40:29:04.000"),
    ("00:00:00:00", 0, 30, "00:00:00:00.000"),
    ("00:59:59:29", 1, 30, "01:00:00:00.000"),
    ("23:59:59:23", 1, 24, "00:00:00:00.000"),
    ("00:00:10:00", 59, 60, "00:00:10:59.000"),
    ("00:00:00:00", 25.5, 30, "00:00:00:25.500"),  # .mmm: thousandths of a frame
    ("00:00:00:00", 30, 23.976, "00:00:01:06.000"),  # 23.976 counts 24 labels a second, non-drop
])
def test_non_drop_frame_arithmetic(start, frame, fps, expected):
    clock = take_timecode(fps, start)
    assert not clock.drop_frame
    assert clock.label_with_subframe(clock.parse(start) + frame) == expected


# SMPTE ST 12-1 drop-frame: labels ;00 and ;01 (;00 to ;03 at 59.94) are skipped at every minute but
# each tenth, so 17982 frames are ten minutes and 107892 an hour at 29.97 (35964 and 215784 at 59.94).
@pytest.mark.parametrize("nominal, frame, label", [
    (30, 0, "00:00:00;00"), (30, 1799, "00:00:59;29"), (30, 1800, "00:01:00;02"), (30, 3597, "00:01:59;29"),
    (30, 3598, "00:02:00;02"), (30, 17981, "00:09:59;29"), (30, 17982, "00:10:00;00"), (30, 17983, "00:10:00;01"),
    (30, 19782, "00:11:00;02"), (30, 107892, "01:00:00;00"), (30, 2589408, "00:00:00;00"),
    (60, 3599, "00:00:59;59"), (60, 3600, "00:01:00;04"), (60, 35964, "00:10:00;00"), (60, 215784, "01:00:00;00"),
])
def test_drop_frame_known_labels(nominal, frame, label):
    clock = Timecode(nominal, drop_frame=True)
    assert clock.label(frame) == label
    assert clock.parse(label) == frame % (24 * 6 * (nominal * 600 - 18 * nominal // 30))


@pytest.mark.parametrize("nominal, fps", [(30, NTSC_30), (60, NTSC_60)])
def test_drop_frame_over_an_hour_follows_the_clock(nominal, fps):
    """Every frame of an hour: labels round-trip, never repeat, skip only the dropped ones, keep to the clock."""
    clock = Timecode(nominal, drop_frame=True)
    frames = np.arange(int(round(3600 * fps)) + 1)
    labels = [clock.label(f) for f in frames]
    assert [clock.parse(label) for label in labels] == frames.tolist()
    fields = np.array([[int(x) for x in label.replace(";", ":").split(":")] for label in labels])
    label_seconds = fields[:, 0] * 3600 + fields[:, 1] * 60 + fields[:, 2] + fields[:, 3] / nominal
    steps = np.diff(label_seconds * nominal).round().astype(int)
    dropped = nominal // 15                                            # 2 at 29.97, 4 at 59.94
    assert set(steps) == {1, 1 + dropped}
    jumps = np.flatnonzero(steps > 1) + 1                              # frames that follow a dropped run
    assert np.all(fields[jumps, 2] == 0) and np.all(fields[jumps, 3] == dropped) and np.all(fields[jumps, 1] % 10)
    assert len(jumps) == 54                                            # 6 of every 60 minutes keep their labels
    # Drop-frame keeps the label within the frames it drops a minute of the real time all hour, exact on the hour.
    assert np.abs(label_seconds - frames / fps).max() < dropped / fps
    assert labels[-1] == "01:00:00;00"


def test_drop_frame_rejects_labels_it_skips():
    clock = Timecode(30, drop_frame=True)
    with pytest.raises(FormatError, match="does not exist in drop-frame"):
        clock.parse("00:01:00;01")
    assert clock.parse("00:10:00;00") == 17982
    with pytest.raises(FormatError, match="out of range at 30 frames"):
        clock.parse("00:00:00;30")
    with pytest.raises(FormatError, match="must look like HH:MM:SS:FF"):
        clock.parse("00:00:00")
    with pytest.raises(ConfigError, match="29.97 and 59.94"):
        Timecode(25, drop_frame=True)


def test_take_timecode_chooses_drop_frame_at_ntsc_rates():
    assert is_ntsc_rate(29.97) and is_ntsc_rate(NTSC_30) and is_ntsc_rate(59.94) and is_ntsc_rate(NTSC_60)
    assert not any(is_ntsc_rate(f) for f in (23.976, 24, 25, 30, 50, 60, 29.5))
    assert take_timecode(29.97, "01:00:00:00") == Timecode(30, True)
    assert take_timecode(59.94, "01:00:00;00") == Timecode(60, True)
    assert take_timecode(30, "01:00:00:00") == Timecode(30, False)
    assert take_timecode(29.97, "01:00:00:00", "non-drop-frame") == Timecode(30, False)
    assert take_timecode(29.97, "01:00:00:00", "non-drop-frame").label(30) == "00:00:01:00"
    assert take_timecode(29.97, "01:00:00:00").label(30) == "00:00:01;00"
    with pytest.raises(ConfigError, match="take runs at 25 fps"):
        take_timecode(25, "01:00:00;00")
    with pytest.raises(ConfigError, match="take runs at 30 fps"):
        take_timecode(30, "01:00:00:00", "drop-frame")
