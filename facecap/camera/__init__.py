"""Cameras: the pinhole + OpenCV distortion model, calibration.json I/O, projection in torch."""

from facecap.camera.model import (Calibration, Camera, calibration_from_dict, calibration_to_dict,
                                  load_calibration, save_calibration)

__all__ = ["Camera", "Calibration", "load_calibration", "save_calibration", "calibration_from_dict",
           "calibration_to_dict"]
