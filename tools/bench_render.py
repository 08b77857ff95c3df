"""Benchmark the rasteriser ops: forward + backward of a textured, vertex-coloured, antialiased render.

Scene: the ICT full rig (opaque triangles, ~51k) seen from several yaw angles. One step is
rasterize -> interpolate colours -> interpolate uv (uv_faces) -> texture -> antialias -> weighted sum ->
backward to positions, colours and texture.

- torch backend on CPU: 800x600, 4 views (ms per view).
- with CUDA and nvdiffrast: nvdiffrast at 1600x1200, 9 views (target < 10 ms per batch on an H100), and
  the torch backend on the same GPU and scene, printing the ratio.

Run alone for numbers worth quoting: ``python tools/bench_render.py [--repeats 3]``.
"""

import argparse
import time

import numpy as np
import torch
from shared_data import ICT_FULL

from facecap.render import make_context
from facecap.rig import load_rig
from facecap.testing.orbit_scene import orbit_scene, render_with_gradients

TEXTURE_SIZE = 1024


def make_scene(rig_path: str, views: int, height: int, width: int, device: torch.device) -> dict:
    return orbit_scene(load_rig(rig_path), np.linspace(-0.8, 0.8, views), height, width, TEXTURE_SIZE, device)


def time_steps(ctx, scene: dict, repeats: int) -> float:
    """Median seconds of one forward + backward step (after one warm-up)."""
    sync = torch.cuda.synchronize if scene["pos"].is_cuda else (lambda: None)
    render_with_gradients(ctx, scene)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_with_gradients(ctx, scene)
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rig", default=str(ICT_FULL), help="rig npz (docs/formats.md §3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cpu_views, cpu_res = 4, (600, 800)
    scene = make_scene(args.rig, cpu_views, *cpu_res, torch.device("cpu"))
    cpu_s = time_steps(make_context("torch"), scene, args.repeats)
    print(f"torch backend, CPU ({torch.get_num_threads()} threads), {cpu_res[1]}x{cpu_res[0]}, {cpu_views} views, "
          f"{len(scene['tri'])} triangles: {1e3 * cpu_s / cpu_views:.1f} ms/view forward+backward")

    if not torch.cuda.is_available():
        print("no CUDA: nvdiffrast benchmark skipped")
        return
    gpu_views, gpu_res = 9, (1200, 1600)
    dev = torch.device("cuda")
    scene = make_scene(args.rig, gpu_views, *gpu_res, dev)
    torch_gpu_s = time_steps(make_context("torch", device=dev), scene, args.repeats)
    print(f"torch backend, {torch.cuda.get_device_name()}, {gpu_res[1]}x{gpu_res[0]}, {gpu_views} views: "
          f"{1e3 * torch_gpu_s:.1f} ms/batch, {1e3 * torch_gpu_s / gpu_views:.2f} ms/view")
    try:
        nv_ctx = make_context("nvdiffrast", device=dev)
    except Exception as err:  # report and stop: the CPU numbers above still stand
        print(f"nvdiffrast unavailable: {err}")
        return
    nv_s = time_steps(nv_ctx, scene, max(args.repeats, 20))
    print(f"nvdiffrast, same GPU and scene: {1e3 * nv_s:.2f} ms/batch (target < 10), "
          f"{1e3 * nv_s / gpu_views:.2f} ms/view; "
          f"{torch_gpu_s / nv_s:.1f}x faster than the torch backend on GPU, "
          f"{(cpu_s / cpu_views) / (nv_s / gpu_views) * (gpu_res[0] * gpu_res[1]) / (cpu_res[0] * cpu_res[1]):.0f}x "
          f"faster per pixel than the torch backend on CPU")


if __name__ == "__main__":
    main()
