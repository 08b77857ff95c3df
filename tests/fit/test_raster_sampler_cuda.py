"""The raster sampler's visibility on nvdiffrast (CUDA) against the torch backend on the same GPU."""

import dataclasses

import pytest
import torch

from facecap.camera.torch_camera import CameraTensors
from facecap.fit.appearance import photometric_samples
from facecap.fit.problem import FitModel
from facecap.fit.raster_sampler import raster_model
from facecap.render import make_context
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.synth.cameras import make_camera_ring

pytestmark = pytest.mark.cuda


def test_nvdiffrast_and_torch_visibility_agree():
    device = torch.device("cuda")
    rig = build_demo_head(DemoHeadConfig(resolution=1.0, texture_size=16)).in_units("mm")
    cams = CameraTensors.from_calibration(make_camera_ring(4, (640, 480), distance=700.0, fov_deg=30.0),
                                          device=device)
    model = FitModel.build(rig, cams, photometric_samples(rig, ["mouth_interior"]), device)
    on_gpu = raster_model(model, rig, ["mouth_interior"], 1.0, 0.25, make_context("nvdiffrast", device=device))
    weights = torch.zeros(2, rig.num_shapes, device=device)
    weights[1, rig.shape_index("jawOpen")] = 0.6
    verts = on_gpu.rig.evaluate(weights, torch.eye(3, device=device).expand(2, 3, 3), torch.zeros(2, 3, device=device))
    seen = {backend: dataclasses.replace(on_gpu, ctx=make_context(backend, device=device)).visible_samples(verts)
            for backend in ("nvdiffrast", "torch")}
    assert seen["torch"].float().mean() > 0.2
    assert float((seen["nvdiffrast"] != seen["torch"]).float().mean()) < 0.005
