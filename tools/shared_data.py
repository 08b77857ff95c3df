"""Where the benchmarks and probes find the team's shared data: ../shared beside the project, or
$FACECAP_SHARED. Never on a user's machine; the tools say so and exit when it is missing."""

import os
from pathlib import Path

SHARED = Path(os.environ.get("FACECAP_SHARED", Path(__file__).resolve().parents[2] / "shared"))
TAKES = SHARED / "data" / "takes"
ICT_FULL = SHARED / "data" / "rigs" / "ict_full.npz"
ICT_FACE = SHARED / "data" / "rigs" / "ict_face.npz"
FACE_LANDMARKER = SHARED / "models" / "face_landmarker.task"
