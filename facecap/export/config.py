"""Settings of the delivery files (``facecap export``, and ``facecap fit``'s ``export`` section)."""

from dataclasses import dataclass
from typing import Literal

from facecap.config import field
from facecap.errors import ConfigError
from facecap.export.head import HeadFrame
from facecap.export.timecode import TimecodeMode

__all__ = ["ExportConfig", "EyeGaze", "FORMATS"]

# What --formats / export.formats may name, and the files they write.
FORMATS = {"json": "animation.json", "csv": "animation.csv", "livelink": "livelink.csv", "glb": "animation.glb",
           "fbx": "animation.fbx"}


@dataclass
class EyeGaze:
    """Eye angles at weight 1 of ARKit's eyeLook shapes, the gaze Live Link's eye columns carry.

    Defaults are the extreme eye rotations MetaPerson's ARKit-named heads pair with these shapes.
    """

    out_deg: float = field(45.0, "eye yaw at eyeLookOut = 1, away from the nose")
    in_deg: float = field(25.0, "eye yaw at eyeLookIn = 1, towards the nose")
    up_deg: float = field(23.0, "eye pitch at eyeLookUp = 1")
    down_deg: float = field(23.0, "eye pitch at eyeLookDown = 1")

    def __post_init__(self) -> None:
        for name in ("out_deg", "in_deg", "up_deg", "down_deg"):
            if not 0 <= getattr(self, name) <= 90:
                raise ConfigError(f"{name} must lie in [0, 90] degrees, got {getattr(self, name)}")


@dataclass
class ExportConfig:
    """Which delivery files to write, in which frame and under which names."""

    formats: list[str] = field(["json", "csv", "livelink", "glb"],
                               "files to write: json (animation.json), csv (animation.csv, FBX-ready), livelink "
                               "(livelink.csv, Live Link Face), glb (animation.glb: the performer's mesh, morph "
                               "targets and head motion), fbx (animation.fbx, through Blender: pip install "
                               "facecap[fbx])")
    head_frame: HeadFrame = field("performer", "frame of the head motion in csv, livelink, glb and fbx: performer "
                                               "(the rig's axes, y up, z where the face looks, at the head's median "
                                               "pose over the take) or world (the calibration's)")
    name_map: str | None = field(None, "YAML file mapping rig shape names to a target's names (csv and livelink; "
                                       "glb and fbx where the map renames one to one)")
    meshes: Literal["npz", "obj", "none"] = field("npz", "head-stabilised meshes: meshes_head.npz, meshes_head/ of "
                                                         "OBJs, or none")
    timecode: TimecodeMode = field("auto", "auto: drop-frame at 29.97 and 59.94 fps (or where the start timecode "
                                           "is written HH:MM:SS;FF), else non-drop-frame")
    eyes: EyeGaze = field(EyeGaze(), "Live Link eye angles from the eyeLook shapes")
    blender: str | None = field(None, "for fbx: a Blender executable, or a Python with the bpy module (default: "
                                      "this Python)")

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise ConfigError(f"unknown export format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
        if len(set(self.formats)) != len(self.formats):
            raise ConfigError(f"formats lists a format twice: {', '.join(self.formats)}")
