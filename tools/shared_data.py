"""Where the benchmarks and probes find the team's shared data: ../shared beside the project, or
$FACECAP_SHARED. Never on a user's machine; the tools say so and exit when it is missing."""

import os
from pathlib import Path

SHARED = Path(os.environ.get("FACECAP_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TAKES = SHARED / "data" / "takes"
ICT_FULL = SHARED / "data" / "rigs" / "ict_full.npz"
ICT_FACE = SHARED / "data" / "rigs" / "ict_face.npz"
FACE_LANDMARKER = SHARED / "models" / "face_landmarker.task"


def takes_missing() -> str | None:
    """Why the ground-truth takes and the ICT rig cannot be read here, or None when they can."""
    if TAKES.is_dir() and ICT_FULL.is_file():
        return None
    return f"needs the ground-truth takes and the ICT rig under {SHARED} (set FACECAP_SHARED)"
