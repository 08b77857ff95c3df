"""Write every export of an animation into one folder."""

import logging
from pathlib import Path

import numpy as np

from facecap.animation import Animation, save_animation_json
from facecap.errors import FormatError
from facecap.export.fbx_csv import write_fbx_csv
from facecap.export.livelink import write_livelink_csv
from facecap.export.meshes import stabilise_meshes, write_mesh_sequence
from facecap.export.plot import plot_weight_curves
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig

__all__ = ["export_animation"]

log = logging.getLogger(__name__)

MESH_CHUNK_FRAMES = 64  # meshes are evaluated and written this many frames at a time, in bounded memory


def export_animation(anim: Animation, out_dir: str | Path, rig: Rig | None = None,
                     world_meshes: np.ndarray | None = None, obj_meshes: bool = False) -> dict[str, Path]:
    """Write animation.json, animation.csv, livelink.csv (when the names map to ARKit), weights.png and meshes.

    Meshes need ``rig`` (for its triangles): with ``world_meshes`` ([T, V, 3] in ``anim.units``) they
    are head-stabilised, else the rig is evaluated at the animation's weights (already head space).
    They go to meshes_head.npz, or meshes_head/frame_XXXXXX.obj with ``obj_meshes``.

    Returns:
        {"json", "csv", "livelink" (when written), "plot", "meshes" (when written)}: the paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": save_animation_json(anim, out / "animation.json"),
             "csv": write_fbx_csv(anim, out / "animation.csv")}
    try:
        paths["livelink"] = write_livelink_csv(anim, out / "livelink.csv")
    except FormatError as err:
        log.warning("livelink.csv not written: %s", err)
    paths["plot"] = plot_weight_curves(anim, out / "weights.png")
    if world_meshes is not None and rig is None:
        raise ValueError("export_animation: world_meshes need the rig for their triangles")
    if rig is not None:
        if world_meshes is not None:
            head = stabilise_meshes(world_meshes, anim)
        else:
            if rig.shape_names != anim.shape_names:
                raise FormatError("export_animation: the rig's shape names differ from the animation's")
            posed = rig.in_units(anim.units)
            head = (evaluate_rig(posed, anim.weights[start:start + MESH_CHUNK_FRAMES])
                    for start in range(0, anim.num_frames, MESH_CHUNK_FRAMES))
        target = out / ("meshes_head" if obj_meshes else "meshes_head.npz")
        paths["meshes"] = write_mesh_sequence(head, rig.faces, target, as_obj=obj_meshes, units=anim.units,
                                              num_frames=anim.num_frames)
    return paths
