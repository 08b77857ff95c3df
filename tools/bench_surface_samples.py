"""Benchmark the rasterised surface sampler against the fit's vertex samples on the ICT rig.

Usage:  python tools/bench_surface_samples.py [--rig ict_full.npz] [--frames 8] [--repeats 5] [--threads 1 2]
                                              [--scales 0.25 0.5 1] [--strides 1] [--device cpu|cuda]

For dev_ict_4cam (4 views, 800x600) and dev_ict_3cam_performer (3 views, 1024x768) it poses the rig
(ict_full, 52k triangles, or a decimation of it with the same shapes) at the first ``--frames`` frames of
the take's ground truth (weights, head pose and the performer's identity) and times, per image scale and
stride, one call of :func:`facecap.fit.surface_samples.rasterise_samples` for the batch (the triangles
outside the fit's default ``exclude_materials`` sampled, the other opaque ones drawn as occluders), with
every triangle drawn from both sides and with the closed surfaces drawn only where they face the view
(``one_sided``: all but the lash cards). The baseline, run alternately in the same process, is the vertex
sampler's visibility (:func:`facecap.fit.appearance.splat_visibility` over
:func:`facecap.fit.appearance.photometric_samples`). It prints medians of ``--repeats`` runs of wall time
and of this process's CPU time (which other load on the machine disturbs less), ratios to the baseline,
and how many samples each yields (visible (sample, view) pairs, summed over the batch).
"""

import argparse
import time

import numpy as np
import torch
from shared_data import ICT_FULL, TAKES

from facecap.animation import load_animation_json
from facecap.camera import load_calibration
from facecap.camera.torch_camera import CameraTensors
from facecap.fit.accuracy import true_identity, weights_in_rig_order
from facecap.fit.appearance import photometric_samples, splat_visibility
from facecap.fit.config import FitConfig
from facecap.fit.surface_samples import rasterise_samples
from facecap.render import make_context, vertex_normals
from facecap.rig import load_rig
from facecap.rig.evaluate import TorchRig
from facecap.units import unit_scale

TAKE_NAMES = ("dev_ict_4cam", "dev_ict_3cam_performer")


def median_times(steps: dict, repeats: int, sync) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each step, run in turn ``repeats`` times after a warm-up round."""
    times = {name: [] for name in steps}
    for round_ in range(repeats + 1):
        for name, step in steps.items():
            sync()
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            sync()
            if round_:
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(np.median(np.array(t), 0)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rig", default=str(ICT_FULL), help="rig npz with ICT's materials (e.g. a decimated ICT)")
    parser.add_argument("--frames", type=int, default=8, help="frames in the batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0], help="image scales")
    parser.add_argument("--strides", type=int, nargs="+", default=[1], help="sample strides")
    parser.add_argument("--device", default="cpu", help="torch device (cuda: nvdiffrast)")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rig = load_rig(args.rig)
    exclude = FitConfig().exclude_materials
    vertex_samples = torch.as_tensor(photometric_samples(rig, exclude), device=device)
    opaque = rig.opaque_faces()
    excluded = [rig.material_names.index(m) for m in exclude if m in rig.material_names]
    sampled_rows = opaque[~np.isin(rig.face_material[opaque], excluded)]
    occluder_rows = opaque[np.isin(rig.face_material[opaque], excluded)]
    sampled = torch.as_tensor(sampled_rows, device=device)
    occluders = torch.as_tensor(occluder_rows, device=device)
    faces = torch.as_tensor(rig.faces, device=device).long()
    one_sided = torch.as_tensor(rig.face_material != rig.material_names.index("M_EyeLashes"), device=device)
    ctx = make_context("auto", device=device)
    print(f"{args.rig}: {len(opaque)} opaque triangles ({len(sampled_rows)} sampled, {len(occluder_rows)} occluders), "
          f"{len(vertex_samples)} vertex samples; backend {ctx.backend}; {args.frames} frames per batch")
    for name in TAKE_NAMES:
        base = TAKES / name
        calib = load_calibration(base / "calibration.json")
        cams = CameraTensors.from_calibration(calib, device=device)
        truth = load_animation_json(base / "ground_truth.json")
        rig_units = rig.in_units(calib.units)
        frames = slice(0, args.frames)
        weights = torch.as_tensor(weights_in_rig_order(truth, rig, truth.num_frames)[frames], device=device,
                                  dtype=torch.float32)
        identity = torch.as_tensor(true_identity(truth, rig), device=device, dtype=torch.float32)
        s = unit_scale(truth.units, calib.units)
        R = torch.as_tensor(truth.R[frames], device=device, dtype=torch.float32)
        t = torch.as_tensor(truth.t[frames] * s, device=device, dtype=torch.float32)
        verts = TorchRig.from_rig(rig_units, device).evaluate(weights, R, t, identity=identity)
        W, H = cams.common_size()
        sample_faces = torch.as_tensor(rig.faces[np.isin(rig.faces, vertex_samples.cpu().numpy()).any(1)],
                                       device=device).long()

        def vertex_step() -> torch.Tensor:
            normals = vertex_normals(verts, sample_faces)[:, vertex_samples]
            return splat_visibility(verts[:, vertex_samples], normals, cams, verts)

        for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            vertex_count = int(vertex_step().sum())
            print(f"{name}: {len(cams)} views {W}x{H}, {args.frames} frames, {threads} thread(s); vertex sampler: "
                  f"{vertex_count} visible samples")
            for scale in args.scales:
                for stride in args.strides:
                    steps = {"vertex": vertex_step}
                    for label, cull in (("both sides", None), ("front only", one_sided)):
                        steps[label] = (lambda c=cull: rasterise_samples(ctx, verts, faces, sampled, occluders, cams,
                                                                         scale, stride, one_sided=c))
                    times = median_times(steps, args.repeats, sync)
                    (vw, vc) = times["vertex"]
                    line = (f"  scale {scale:g} stride {stride}: vertex sampler {1e3 * vw:.0f} ms wall / "
                            f"{1e3 * vc:.0f} ms CPU")
                    for label in ("both sides", "front only"):
                        w, c = times[label]
                        ratio = f"{c / vc:.1f}x CPU" if device.type == "cpu" else f"{w / vw:.1f}x wall"
                        line += f"; rasterised, {label}: {1e3 * w:.0f} / {1e3 * c:.0f} ms ({ratio})"
                    count = len(steps["front only"]())
                    print(line + f"; {count} samples ({count / vertex_count:.2f}x)")


if __name__ == "__main__":
    main()
