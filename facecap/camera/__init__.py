"""Cameras: the pinhole + OpenCV distortion model, calibration.json I/O, torch projection, triangulation."""

from facecap.camera.model import (Calibration, Camera, calibration_from_dict, calibration_to_dict,
                                  load_calibration, save_calibration)
from facecap.camera.torch_camera import (CameraTensors, canvas_size, distort_normalized, near_far_from_points,
                                         project_points, scaled_intrinsics, scaled_size, world_to_camera,
                                         world_to_clip)
from facecap.camera.triangulate import triangulate_points
from facecap.camera.undistort import LensWarp, undistort_image, undistort_pixels

__all__ = ["Camera", "Calibration", "load_calibration", "save_calibration", "calibration_from_dict",
           "calibration_to_dict", "CameraTensors", "project_points", "world_to_camera", "world_to_clip",
           "near_far_from_points", "scaled_intrinsics", "scaled_size", "canvas_size", "distort_normalized",
           "LensWarp", "undistort_image", "undistort_pixels", "triangulate_points"]
