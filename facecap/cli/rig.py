"""``facecap rig``: inspect a rig, build one from a folder of OBJs, or write one out as OBJs."""

import argparse
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from facecap.cli.common import add_command, add_out_argument, npz_path
from facecap.publish import publishing, publishing_files
from facecap.rig.decimate import decimate_rig
from facecap.rig.io import load_rig, save_rig
from facecap.rig.model import Rig
from facecap.rig.obj import NEUTRAL_NAME, export_obj_folder, import_obj_folder
from facecap.units import UNITS_IN_MM

__all__ = ["register", "describe_rig"]


log = logging.getLogger(__name__)


def describe_rig(rig: Rig) -> list[str]:
    """Human-readable summary lines: units, counts, shapes, correctives, landmarks, materials, texture."""
    lines = [f"units: {rig.units}",
             f"vertices: {rig.num_vertices}  triangles: {len(rig.faces)}  shapes: {rig.num_shapes}  "
             f"correctives: {rig.num_correctives}  identity modes: {rig.num_identities}",
             f"shapes: {', '.join(rig.shape_names) or '(none)'}"]
    if rig.num_correctives:
        names = ["+".join(rig.shape_names[k] for k in key if k >= 0) for key in rig.corrective_keys]
        lines.append(f"correctives: {', '.join(names)}")
    if rig.landmark_vertices is not None:
        lines.append(f"landmarks: {len(rig.landmark_vertices)} ({rig.landmark_scheme or 'no scheme'})")
    else:
        lines.append("landmarks: none")
    lines.append(f"uv: {len(rig.uv)} coordinates" if rig.uv is not None else "uv: none")
    if rig.material_names:
        counts = Counter(rig.face_material.tolist()) if rig.face_material is not None else Counter()
        opaque = rig.material_opaque
        lines.append("materials:")
        lines += [f"  {name}: {counts.get(m, 0)} triangles" + ("" if opaque is None or opaque[m] else ", see-through")
                  for m, name in enumerate(rig.material_names)]
    else:
        lines.append("materials: none")
    lines.append("texture: " + ("none" if rig.texture is None else
                                "x".join(str(s) for s in rig.texture.shape[1:3]) + f", {rig.texture.shape[0]} tile(s)"))
    return lines


def _info(args: argparse.Namespace) -> int:
    print(f"{args.rig}:")
    print("\n".join(describe_rig(load_rig(args.rig))))
    return 0


def _import_obj(args: argparse.Namespace) -> int:
    rig = import_obj_folder(args.folder, neutral_name=args.neutral, units=args.units,
                            landmark_scheme=args.landmark_scheme)
    out = npz_path(args.out)
    with publishing_files(out) as (tmp,):
        save_rig(rig, tmp)
    print(f"wrote {out}: {rig.num_vertices} vertices, {rig.num_shapes} shapes, {rig.num_correctives} "
          f"correctives, units {rig.units}")
    return 0


def _export_obj(args: argparse.Namespace) -> int:
    rig = load_rig(args.rig)
    with publishing(args.out, "rig export-obj") as run:
        paths = export_obj_folder(rig, run.staging)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _decimate(args: argparse.Namespace) -> int:
    rig = load_rig(args.rig)
    result = decimate_rig(rig, args.vertices)
    out = npz_path(args.out)
    with publishing_files(out) as (tmp,):
        save_rig(result.rig, tmp)
    print(f"wrote {out}: {result.rig.num_vertices} vertices ({result.face_vertices} in the face region), "
          f"{len(result.rig.faces)} triangles; from {rig.num_vertices} vertices, {len(rig.faces)} triangles")
    return 0


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "rig",
        "Rigs are npz files (docs/formats.md §3). 'info' summarises one; 'import-obj' builds one from a folder "
        "with neutral.obj plus one OBJ per shape named by the shape (same topology; a+b.obj is a corrective "
        "sculpted at a=b=1; optional landmarks.json or landmarks.txt of vertex ids); 'export-obj' writes "
        "that folder back; 'decimate' makes a sparse tracking rig with the same shapes.",
        examples=["facecap rig info ../shared/data/rigs/ict_face.npz",
                  "facecap rig import-obj my_head_objs/ --out my_head.npz --units cm",
                  "facecap rig export-obj my_head.npz --out my_head_objs/",
                  "facecap rig decimate ../shared/data/rigs/ict_full.npz --vertices 2500 --out ict_sparse.npz"])
    sub = parser.add_subparsers(title="rig commands", metavar="<rig command>", required=True)
    info = sub.add_parser("info", help="print units, counts, shapes, correctives, landmarks, materials")
    info.add_argument("rig", type=Path, help="rig .npz file")
    info.set_defaults(func=_info)
    imp = sub.add_parser("import-obj", help="build a rig.npz from a folder of OBJs")
    imp.add_argument("folder", type=Path, help="folder with the neutral and one OBJ per shape")
    add_out_argument(imp, "rig .npz to write")
    imp.add_argument("--units", choices=list(UNITS_IN_MM), default="cm", help="unit the OBJs were exported in")
    imp.add_argument("--neutral", default=NEUTRAL_NAME, help="file name of the neutral mesh in the folder")
    imp.add_argument("--landmark-scheme", default="multipie68", help="scheme of the ids in landmarks.txt")
    imp.set_defaults(func=_import_obj)
    exp = sub.add_parser("export-obj", help="write a rig as neutral.obj plus one OBJ per shape and corrective")
    exp.add_argument("rig", type=Path, help="rig .npz file")
    add_out_argument(exp, "folder to write")
    exp.set_defaults(func=_export_obj)
    dec = sub.add_parser(
        "decimate", help="quadric decimation to N face vertices, with shapes, identity modes, UVs, landmarks",
        description="Decimate every material at one ratio of triangles so that the face region (the M_Face "
                    "material's triangles, else every opaque one) keeps at most N vertices; material borders "
                    "stay whole. Every new vertex lies on the original surface at any weights and identity, "
                    "with the offsets, UVs and texture of that point; each landmark keeps its exact place.")
    dec.add_argument("rig", type=Path, help="rig .npz file")
    dec.add_argument("--vertices", type=int, required=True, metavar="N",
                     help="vertices of the face region to keep at most (the search lands within 1%% below)")
    add_out_argument(dec, "rig .npz to write")
    dec.set_defaults(func=_decimate)
