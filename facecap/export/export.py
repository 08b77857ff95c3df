"""Write every delivery file of an animation into one folder, all or nothing."""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from facecap.animation import Animation, save_animation_json
from facecap.errors import FormatError
from facecap.export.config import FORMATS, ExportConfig
from facecap.export.fbx import write_fbx
from facecap.export.fbx_csv import write_fbx_csv
from facecap.export.gltf import write_glb
from facecap.export.head import delivered_motion
from facecap.export.livelink import write_livelink_csv
from facecap.export.meshes import stabilise_meshes, write_mesh_sequence
from facecap.export.morph import MorphMesh
from facecap.export.names import NameMap, load_name_map, renamed, target_names
from facecap.export.plot import plot_weight_curves
from facecap.export.timecode import take_timecode
from facecap.rig.evaluate import evaluate_rig
from facecap.rig.model import Rig

__all__ = ["export_animation"]

log = logging.getLogger(__name__)

_MESH_NAMES = {"npz": "meshes_head.npz", "obj": "meshes_head"}
MESH_CHUNK_FRAMES = 64  # meshes are evaluated and written this many frames at a time, in bounded memory


def _mesh_target_names(shape_names: tuple[str, ...], name_map: NameMap | None) -> tuple[str, ...]:
    """The morph targets' names: the name map's where it renames one to one, else the rig's."""
    targets = target_names(shape_names, name_map)
    if None in targets or len(set(targets)) != len(targets):
        log.warning("name map drops or merges shapes: animation.glb and animation.fbx keep the rig's names")
        return shape_names
    return tuple(targets)


def _write_all(anim: Animation, stage: Path, rig: Rig | None, world_meshes: np.ndarray | None,
               config: ExportConfig, identity: np.ndarray | None) -> dict[str, Path]:
    """Every file into the folder ``stage``; returns the key -> path of each."""
    name_map = load_name_map(config.name_map) if config.name_map else None
    delivered, rest = delivered_motion(anim, config.head_frame)
    timecode = take_timecode(anim.fps, anim.start_timecode, config.timecode)
    paths: dict[str, Path] = {}
    if "json" in config.formats:
        paths["json"] = save_animation_json(anim, stage / FORMATS["json"])
    if "csv" in config.formats:
        paths["csv"] = write_fbx_csv(renamed(delivered, name_map), stage / FORMATS["csv"], timecode)
    if "livelink" in config.formats:
        try:
            paths["livelink"] = write_livelink_csv(renamed(delivered, name_map), stage / FORMATS["livelink"],
                                                   timecode, config.eyes)
        except FormatError as err:
            log.warning("livelink.csv not written: %s", err)
    paths["plot"] = plot_weight_curves(anim, stage / "weights.png")
    if rig is None:
        dropped = [f for f in ("glb", "fbx") if f in config.formats]
        if dropped:
            log.warning("%s not written: glTF and FBX need the rig", ", ".join(FORMATS[f] for f in dropped))
        return paths
    rig = rig.in_units(anim.units)
    if rig.shape_names != anim.shape_names:
        raise FormatError("export_animation: the rig's shape names differ from the animation's")
    if {"glb", "fbx"} & set(config.formats):
        mesh = MorphMesh.from_rig(rig, identity, _mesh_target_names(rig.shape_names, name_map))
        extras = {"head_frame": config.head_frame}
        if rest is not None:
            extras["rest_pose"] = {"R": rest.R.tolist(), "t": rest.t.tolist(), "units": anim.units}
        glb = write_glb(delivered, mesh, stage / FORMATS["glb"], extras)
        if "glb" in config.formats:
            paths["glb"] = glb
        if "fbx" in config.formats:
            paths["fbx"] = write_fbx(glb, stage / FORMATS["fbx"], anim.fps, config.blender)
        if "glb" not in config.formats:
            glb.unlink()
    if config.meshes != "none":
        if world_meshes is not None:
            head = stabilise_meshes(world_meshes, anim)
        else:
            known = identity if identity is not None and len(identity) else None
            head = (evaluate_rig(rig, anim.weights[start:start + MESH_CHUNK_FRAMES], known)
                    for start in range(0, anim.num_frames, MESH_CHUNK_FRAMES))
        paths["meshes"] = write_mesh_sequence(head, rig.faces, stage / _MESH_NAMES[config.meshes],
                                              as_obj=config.meshes == "obj", units=anim.units,
                                              num_frames=anim.num_frames)
    return paths


def _publish(paths: dict[str, Path], out: Path) -> dict[str, Path]:
    """Move the staged files and folders into ``out``, replacing what was there."""
    published = {}
    for key, staged in paths.items():
        target = out / staged.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
        published[key] = target
    return published


def export_animation(anim: Animation, out_dir: str | Path, rig: Rig | None = None,
                     world_meshes: np.ndarray | None = None, config: ExportConfig | None = None,
                     identity: np.ndarray | None = None) -> dict[str, Path]:
    """Write the delivery files of ``config.formats`` (default :class:`ExportConfig`), weights.png and meshes.

    animation.json keeps the head pose in the calibration's world; animation.csv, livelink.csv,
    animation.glb and animation.fbx carry it in ``config.head_frame`` (:mod:`facecap.export.head`).
    The glb and fbx and the meshes need ``rig`` (its mesh, with the ``identity`` coefficients of its
    identity modes baked in). With ``world_meshes`` ([T, V, 3] in ``anim.units``) the meshes are those,
    head-stabilised, else the rig evaluated at the animation's weights; they go to meshes_head.npz or
    meshes_head/frame_XXXXXX.obj (``config.meshes``). Everything is written to a scratch folder first
    and moved into ``out_dir`` only when all of it was written.

    Returns:
        {"json", "csv", "livelink", "glb", "fbx", "plot", "meshes"}: the paths of those written.
    """
    config = ExportConfig() if config is None else config
    if world_meshes is not None and rig is None:
        raise ValueError("export_animation: world_meshes need the rig for their triangles")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        return _publish(_write_all(anim, stage, rig, world_meshes, config, identity), out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
