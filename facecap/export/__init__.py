"""Delivery files for the next tool: JSON, FBX-ready CSV, Live Link Face CSV, glTF, FBX, meshes and plots."""

from facecap.export.config import ExportConfig
from facecap.export.export import export_animation
from facecap.export.fbx_csv import read_fbx_csv, write_fbx_csv
from facecap.export.gltf import write_glb
from facecap.export.head import continuous_euler, delivered_motion, in_performer_frame, rest_pose
from facecap.export.livelink import write_livelink_csv
from facecap.export.meshes import load_mesh_sequence, stabilise_meshes, write_mesh_sequence
from facecap.export.plot import plot_weight_curves

__all__ = ["ExportConfig", "export_animation", "write_fbx_csv", "read_fbx_csv", "write_livelink_csv", "write_glb",
           "rest_pose", "in_performer_frame", "delivered_motion", "continuous_euler",
           "stabilise_meshes", "write_mesh_sequence", "load_mesh_sequence", "plot_weight_curves"]
