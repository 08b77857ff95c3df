"""The face model: load/save, validation, evaluation (numpy and torch), importers, decimation, the demo head."""

from facecap.rig.decimate import Decimation, decimate_rig
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.rig.evaluate import TorchRig, corrective_activations, corrective_jacobian, evaluate_rig
from facecap.rig.io import load_rig, save_rig
from facecap.rig.model import Rig, validate_rig
from facecap.rig.obj import import_obj_folder, load_obj, save_obj

__all__ = ["Rig", "validate_rig", "load_rig", "save_rig", "evaluate_rig", "TorchRig", "corrective_activations",
           "corrective_jacobian", "build_demo_head", "DemoHeadConfig", "import_obj_folder", "load_obj", "save_obj",
           "decimate_rig", "Decimation"]
