"""The rasterised sampler on nvdiffrast (CUDA) against the torch backend on the same GPU: the same samples."""

import numpy as np
import pytest
import torch

from facecap.camera.torch_camera import CameraTensors
from facecap.fit.surface_samples import rasterise_samples
from facecap.render import make_context
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head
from facecap.synth.cameras import make_camera_ring

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("one_sided", [False, True])
def test_nvdiffrast_and_torch_samplers_agree(one_sided):
    device = torch.device("cuda")
    rig = build_demo_head(DemoHeadConfig(resolution=1.0, texture_size=16)).in_units("mm")
    weights = np.zeros((2, rig.num_shapes))
    weights[1, rig.shape_index("jawOpen")] = 0.6
    verts = torch.as_tensor(rig.neutral + np.tensordot(weights, rig.shape_deltas, 1), dtype=torch.float32,
                            device=device)
    faces = torch.as_tensor(rig.faces, device=device).long()
    skin = torch.as_tensor(np.flatnonzero(rig.face_material == rig.material_names.index("skin")), device=device)
    mouth = torch.as_tensor(np.flatnonzero(rig.face_material != rig.material_names.index("skin")), device=device)
    cams = CameraTensors.from_calibration(make_camera_ring(4, (640, 480), distance=700.0, fov_deg=30.0),
                                          device=device)
    cull = torch.ones(len(faces), dtype=torch.bool, device=device) if one_sided else None
    out = {backend: rasterise_samples(make_context(backend, device=device), verts, faces, skin, mouth, cams,
                                      scale=0.5, stride=1, one_sided=cull) for backend in ("nvdiffrast", "torch")}

    def keyed(s):
        view = s.frame * len(cams) + s.camera
        px = s.pixel.round().long()
        return {(v, x, y): i for i, (v, x, y) in enumerate(zip(view.tolist(), px[:, 0].tolist(), px[:, 1].tolist()))}
    nv, ref = keyed(out["nvdiffrast"]), keyed(out["torch"])
    common = nv.keys() & ref.keys()
    assert len(common) / len(nv.keys() | ref.keys()) > 0.995
    i = torch.tensor([nv[k] for k in common], device=device)
    j = torch.tensor([ref[k] for k in common], device=device)
    same = out["nvdiffrast"].triangle[i] == out["torch"].triangle[j]
    assert float(same.float().mean()) > 0.99
    torch.testing.assert_close(out["nvdiffrast"].barycentrics[i][same], out["torch"].barycentrics[j][same],
                               atol=1e-3, rtol=0)
