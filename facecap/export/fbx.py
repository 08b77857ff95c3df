"""animation.fbx: animation.glb converted by Blender (an optional extra: ``pip install facecap[fbx]``).

FBX is a closed format; Blender's exporter is the maintained open writer of it. Blender runs in a
process of its own (:mod:`facecap.export.blender_fbx`), so that its global scene state and its own
NumPy stay out of facecap's process: either this Python with the ``bpy`` module, or a Blender
executable named by ``export.blender``. The FBX holds what the glb holds (the performer's mesh,
its shape keys and their animation, the head's motion) at the take's frame rate, y up, in
centimetres.
"""

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

from facecap.errors import ConfigError, FacecapError
from facecap.export.timecode import is_ntsc_rate

__all__ = ["write_fbx", "blender_command", "blender_frame_rate"]

log = logging.getLogger(__name__)

_SCRIPT = Path(__file__).with_name("blender_fbx.py")
_NTSC_BASE = 1.001
_LOG_TAIL = 2000  # characters of Blender's output quoted when it fails


def blender_frame_rate(fps: float) -> tuple[int, float]:
    """Blender's (fps, fps_base) for a take's frame rate: (30, 1.001) at 29.97, (25, 1.0) at 25."""
    if is_ntsc_rate(fps):
        return round(fps * _NTSC_BASE), _NTSC_BASE
    nominal = max(1, round(fps))
    return nominal, nominal / fps


def blender_command(blender: str | None, script: str | Path = _SCRIPT) -> list[str]:
    """The command that runs a Blender Python ``script``, before the script's own arguments.

    ``blender`` None runs it with this Python, which needs the ``bpy`` module; a path whose name starts
    with "blender" is a Blender executable (run in the background, factory settings); any other path is
    a Python with ``bpy``.
    """
    if blender is None:
        if importlib.util.find_spec("bpy") is None:
            raise ConfigError("fbx export needs Blender: pip install 'facecap[fbx]' (the bpy module), or name a "
                              "Blender executable with --set export.blender=/path/to/blender")
        return [sys.executable, str(script)]
    if Path(blender).name.lower().startswith("blender"):
        return [blender, "--background", "--factory-startup", "--python", str(script), "--"]
    return [blender, str(script)]


def write_fbx(glb: str | Path, path: str | Path, fps: float, blender: str | None = None) -> Path:
    """Convert ``glb`` (written by :func:`facecap.export.gltf.write_glb`) to FBX at ``fps`` frames a second."""
    path = Path(path)
    rate, base = blender_frame_rate(fps)
    command = blender_command(blender) + [str(glb), str(path), "--fps", str(rate), "--fps-base", repr(base)]
    log.info("converting %s to FBX with Blender", glb)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:
        raise ConfigError(f"export.blender: cannot run {command[0]!r} ({err})") from None
    if done.returncode != 0 or not path.is_file():
        output = (done.stdout + done.stderr)[-_LOG_TAIL:]
        raise FacecapError(f"Blender could not write {path.name} (exit status {done.returncode}):\n{output}")
    log.info("wrote %s", path)
    return path
