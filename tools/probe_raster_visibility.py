"""How well the raster sampler's visibility test agrees with a fine rasterisation, and the vertex sampler's.

Usage:  python tools/probe_raster_visibility.py [--take dev_ict_4cam] [--rig ict_full.npz] [--frames 0 30]
                                                [--scales 0.125 0.25 0.5] [--tolerances 0.25 0.5 1] [--spacing-px 6]
                                                [--reference-scale 2]

On frames of a dev take posed at the truth (weights, pose, identity), it lays the raster sampler's surface
points (:func:`facecap.fit.raster_sampler.raster_model`) and decides which views see each with the raster test at
each raster scale and depth tolerance (in raster pixels), against a reference: the same test on a raster at
``--reference-scale`` with a tolerance of a quarter of its pixel, where the surface's curvature within a pixel is
negligible. It prints the share of the reference's (point, view) pairs each test misses and the share it adds,
over all points and over the points within 15 mm of an eyeball (the lids), and the same for the vertex sampler's
point z-buffer on the vertex points.
"""

import argparse
import dataclasses

import numpy as np
import torch
from shared_data import ICT_FULL, TAKES

import facecap.fit.raster_sampler as raster_sampler
from facecap.animation import load_animation_json
from facecap.camera import load_calibration
from facecap.camera.torch_camera import CameraTensors, scaled_intrinsics
from facecap.fit.accuracy import true_identity, weights_in_rig_order
from facecap.fit.appearance import photometric_samples
from facecap.fit.config import FitConfig
from facecap.fit.problem import FitModel
from facecap.fit.raster_sampler import raster_model
from facecap.render import make_context
from facecap.rig import load_rig
from facecap.units import unit_scale

EYE_RADIUS_MM = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--take", default="dev_ict_4cam")
    parser.add_argument("--rig", default=str(ICT_FULL))
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 30])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.125, 0.25, 0.5])
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--spacing-px", type=float, default=FitConfig().sample_spacing_px)
    parser.add_argument("--reference-scale", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = TAKES / args.take
    calib = load_calibration(base / "calibration.json")
    cams = CameraTensors.from_calibration(calib)
    truth = load_animation_json(base / "ground_truth.json")
    source = load_rig(args.rig)
    rig = source.in_units(calib.units)
    config = FitConfig()
    samples = photometric_samples(rig, config.exclude_materials)
    model = FitModel.build(rig, cams, samples, "cpu")
    frames = np.asarray(args.frames)
    weights = torch.as_tensor(weights_in_rig_order(truth, source, truth.num_frames)[frames], dtype=torch.float32)
    identity = torch.as_tensor(true_identity(truth, source), dtype=torch.float32)
    R = torch.as_tensor(truth.R[frames], dtype=torch.float32)
    t = torch.as_tensor(truth.t[frames] * unit_scale(truth.units, calib.units), dtype=torch.float32)
    spacing = args.spacing_px / model.pixels_per_unit(R, t)
    ctx = make_context("torch")

    def at_scale(scale: float) -> raster_sampler.RasterFitModel:
        return raster_model(model, rig, config.exclude_materials, spacing, min(scale, 1.0), ctx)

    points = at_scale(1.0)
    verts = points.rig.evaluate(weights, R, t, identity=identity)
    X = verts[0, points.samples]
    eyes = [rig.material_names.index(m) for m in ("M_ScleraLeft", "M_ScleraRight")]
    centres = [verts[0, np.unique(rig.faces[rig.face_material == m])].mean(0) for m in eyes]
    near_eye = torch.stack([(X - c).norm(dim=-1) < EYE_RADIUS_MM * unit_scale("mm", calib.units)
                            for c in centres]).any(0)
    print(f"{args.take}, frames {frames.tolist()}: {len(points.samples)} points ({len(samples)} vertices), "
          f"{int(near_eye.sum())} near the eyes")

    def visible(scale: float, tolerance: float) -> torch.Tensor:
        raster_sampler.DEPTH_TOLERANCE_PX = tolerance
        if scale <= 1:
            return at_scale(scale).visible_samples(verts)
        big = dataclasses.replace(cams, K=scaled_intrinsics(cams.K, scale),
                                  image_sizes=(cams.image_sizes * scale).round().to(cams.image_sizes.dtype))
        return dataclasses.replace(at_scale(1.0), cams=big).visible_samples(verts)

    reference = visible(args.reference_scale, 0.25)

    def compare(label: str, test: torch.Tensor, ref: torch.Tensor, eye: torch.Tensor) -> None:
        line = f"  {label:34s}"
        for name, mask in (("all", torch.ones_like(eye)), ("near the eyes", eye)):
            r, v = ref[:, :, mask], test[:, :, mask]
            missed = float((r & ~v).sum()) / max(float(r.sum()), 1)
            added = float((v & ~r).sum()) / max(float(r.sum()), 1)
            line += f" {name}: {int(r.sum())} seen, missed {missed:.2%}, added {added:.2%};"
        print(line)

    for scale in args.scales:
        for tolerance in args.tolerances:
            compare(f"raster {scale:g}, tolerance {tolerance:g} px", visible(scale, tolerance), reference, near_eye)
    vertex = slice(0, len(samples))
    splat = model.visible_samples(model.rig.evaluate(weights, R, t, identity=identity))
    compare("vertex sampler (point z-buffer)", splat, reference[:, :, vertex], near_eye[vertex])


if __name__ == "__main__":
    main()
