"""Animation files for the next tool: JSON, FBX-ready CSV, Live Link Face CSV, meshes and plots."""

from facecap.export.export import export_animation
from facecap.export.fbx_csv import read_fbx_csv, write_fbx_csv
from facecap.export.livelink import write_livelink_csv
from facecap.export.meshes import load_mesh_sequence, stabilise_meshes, write_mesh_sequence
from facecap.export.plot import plot_weight_curves

__all__ = ["write_fbx_csv", "read_fbx_csv",
           "write_livelink_csv", "stabilise_meshes", "write_mesh_sequence", "load_mesh_sequence",
           "plot_weight_curves", "export_animation"]
