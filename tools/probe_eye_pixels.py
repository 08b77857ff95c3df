"""How firmly an eye shape is determined when the eye is rendered in pixel space, eyeballs and all.

Usage:  python tools/probe_eye_pixels.py [--take dev_ict_4cam] [--shape eyeSquint_L] [--no-eyeballs] [--lashes]
                                         [--steps -0.1 -0.05 0 0.05 0.1] [--fit animation.json]

The fit reads colours at the face's vertices and leaves the eyeballs out (facecap.fit.appearance),
which leaves the lower lid's shapes weakly determined (docs/decisions.md, "eyeSquint's bias"). This probe
asks what a rendered term would see.
On frames of the take posed at their true weights, pose and identity, with ``--shape`` moved by each
step (on the frames where it is on; on all when it is off throughout), it rasterises the face around
that shape's eye, with the eyeball unless ``--no-eyeballs`` (and the lash cards, opaque, with
``--lashes``), over a crop of every camera, 3x3 points per pixel as the takes' renderer supersamples,
each point taken through the lens's undistortion to the pinhole raster. Every vertex gets one colour
for all frames and cameras, solved by least squares (reweighted for Charbonnier's loss) at each step,
and the energy left is printed relative to its least. The cameras' gains come from the take's
generator block, which only a probe may read. With ``--fit``, the frames are posed at a fitted
animation's weights and head poses instead (the identity stays the truth's), and the steps are offsets
from the fitted weight, so that the energy's least can be compared with the truth from where a fit
stands. About half a minute.
"""

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import lsqr
from shared_data import ICT_FULL, SHARED, TAKES

from facecap.animation import load_animation_json
from facecap.camera import load_calibration
from facecap.camera.torch_camera import CameraTensors, canvas_size, near_far_from_points, project_points, world_to_clip
from facecap.fit.accuracy import true_identity, weights_in_rig_order
from facecap.fit.feed import read_batch
from facecap.render import ops
from facecap.rig import load_rig
from facecap.rig.evaluate import TorchRig
from facecap.rig.model import Rig
from facecap.take import open_take
from facecap.units import unit_scale

SUPERSAMPLE = 3
CROP = (64, 44)            # pixels around the eye, width and height
MARGIN_PX = 4              # raster margin for what the lens pulls into the crop
REGION_RADIUS = 32.0       # mm around the eyeball's centre: the triangles drawn
CHARBONNIER_EPS = 0.03
FRAMES = [9, 12, 15, 18, 21, 24, 33, 36, 0, 2, 50, 57]   # eight of dev_ict_4cam's squint, four without it


def eye_triangles(rig: Rig, side: str, eyeballs: bool, lashes: bool) -> tuple[np.ndarray, np.ndarray]:
    """[F, 3] opaque triangles around the eye of ``side`` ("L" or "R"), and the eyeball's vertices."""
    names = list(rig.material_names)
    word = {"L": "Left", "R": "Right"}[side]
    sclera = np.unique(rig.faces[rig.face_material == names.index(f"M_Sclera{word}")])
    drawn = (["M_Face"] + ([f"M_Sclera{word}", f"M_Iris{word}"] if eyeballs else [])
             + (["M_EyeLashes"] if lashes else []))
    centre = rig.neutral[sclera].mean(0)
    near = np.linalg.norm(rig.neutral - centre, axis=1) < REGION_RADIUS / unit_scale(rig.units, "mm")
    keep = np.isin(rig.face_material, [names.index(m) for m in drawn]) & near[rig.faces].all(1)
    return rig.faces[keep], sclera


class EyeCrops:
    """A crop around one eye in every camera (pinhole cameras of the crop), and where each of its pixels'
    3x3 points falls on their raster at three times the resolution."""

    def __init__(self, cams: CameraTensors, centre_px: torch.Tensor) -> None:
        """``centre_px`` [C, 2]: where the eye lies in each camera."""
        (w, h), s = CROP, SUPERSAMPLE
        self.corner = (centre_px - torch.tensor([w / 2, h / 2 - 4])).round().long()     # the lower lid below centre
        K = cams.K.clone()
        K[:, :2, 2] -= self.corner
        self.cams = CameraTensors(K=K, dist=torch.zeros_like(cams.dist), R=cams.R, t=cams.t,
                                  image_sizes=torch.tensor([CROP] * len(cams)), names=cams.names)
        self.pad = (s * MARGIN_PX, s * MARGIN_PX)
        self.size = canvas_size(self.cams, s, self.pad)
        # Where each pixel's s x s points fall on the canvas: through the lens's undistortion to the crop's
        # pinhole pixels, then the canvas's mapping (scaled_intrinsics, offset by the pad).
        offsets = (np.arange(s) - (s - 1) / 2) / s
        rows, cols = np.mgrid[0:h, 0:w]
        lookup = []
        for c in range(len(cams)):
            x0, y0 = self.corner[c].tolist()
            u = (x0 + cols)[..., None, None] + offsets[None, None, None, :]
            v = (y0 + rows)[..., None, None] + offsets[None, None, :, None]
            points = np.stack(np.broadcast_arrays(u, v), -1).reshape(-1, 1, 2)
            K_c = cams.K[c].double().numpy()
            pinhole = cv2.undistortPoints(points, K_c, cams.dist[c].double().numpy(), P=K_c).reshape(-1, 2)
            raster = np.round((pinhole - [x0, y0] + 0.5) * s - 0.5 + self.pad).astype(int)
            raster = np.clip(raster, 0, np.array(self.size) - 1)
            lookup.append(raster[:, 1] * self.size[0] + raster[:, 0])
        self.lookup = torch.as_tensor(np.stack(lookup))                              # [C, pixels * s²]

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """[B, C, h w, 3] the crops of [B, C, 3, H, W] frames."""
        w, h = CROP
        crops = [images[:, c, :, y0:y0 + h, x0:x0 + w] for c, (x0, y0) in enumerate(self.corner.tolist())]
        return torch.stack(crops, 1).permute(0, 1, 3, 4, 2).flatten(2, 3)

    def coverage(self, ctx: ops.RasterContext, verts: torch.Tensor,
                 tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For [B, V, 3] posed vertices: barycentrics [B, C, P, s², 3] and vertex ids [B, C, P, s², 3] of each
        pixel's points, and [B, C, P] whether the drawn triangles cover all of a pixel's points."""
        B, C = verts.shape[0], len(self.cams)
        near, far = near_far_from_points(verts, self.cams)
        clip = world_to_clip(verts, self.cams, near, far, scale=SUPERSAMPLE, pad=self.pad).flatten(0, 1).contiguous()
        rast, _ = ops.rasterize(ctx, clip, tri, self.size[::-1])
        rast = rast.reshape(B, C, -1, 4)
        points = torch.stack([rast[:, c, self.lookup[c]] for c in range(C)], 1)
        points = points.unflatten(2, (-1, SUPERSAMPLE ** 2))
        triangle = points[..., 3].long() - 1
        bary = torch.stack([1 - points[..., 0] - points[..., 1], points[..., 0], points[..., 1]], -1)
        return bary, tri.long()[triangle.clamp_min(0)], (triangle >= 0).all(-1)


def colour_energy(bary: torch.Tensor, vertex: torch.Tensor, covered: torch.Tensor, observed: torch.Tensor) -> float:
    """Charbonnier energy of the pixels ``covered`` everywhere [B, C, P] after one colour per vertex is fitted
    to ``observed`` [B, C, P, 3] (each pixel the mean of its points' interpolated colours)."""
    keep = covered.reshape(-1)
    n = int(keep.sum())
    b = (bary.flatten(0, 2)[keep] / SUPERSAMPLE ** 2).reshape(-1).numpy()
    v = vertex.flatten(0, 2)[keep].reshape(-1).numpy()
    row = np.repeat(np.arange(n), SUPERSAMPLE ** 2 * 3)
    used, column = np.unique(v, return_inverse=True)
    A = sp.csr_matrix((b, (row, column)), shape=(n, len(used)))
    o = observed.flatten(0, 2)[keep].double().numpy()
    root_weight = np.ones_like(o)
    for _ in range(4):
        colours = np.stack([lsqr(sp.diags(root_weight[:, k]) @ A, root_weight[:, k] * o[:, k], damp=1e-3,
                                 iter_lim=400)[0] for k in range(3)], 1)
        r = A @ colours - o
        root_weight = (r * r + CHARBONNIER_EPS ** 2) ** -0.25
    return float((np.sqrt(r * r + CHARBONNIER_EPS ** 2) - CHARBONNIER_EPS).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--take", default="dev_ict_4cam", help="a take of ../shared/data/takes")
    parser.add_argument("--shape", default="eyeSquint_L", help="an eye shape of the ICT rig (its side: _L or _R)")
    parser.add_argument("--steps", type=float, nargs="+", help="offsets of the shape's weight (default: -0.1 to 0.1 "
                        "by 0.05, or 0 to 0.15 for a shape that is off)")
    parser.add_argument("--no-eyeballs", action="store_true", help="draw the face alone, as the fit samples it")
    parser.add_argument("--lashes", action="store_true", help="draw the lash cards, opaque")
    parser.add_argument("--fit", type=Path, help="a fitted animation.json of the take: pose the frames as it does")
    args = parser.parse_args()
    take_dir = TAKES / args.take
    if not take_dir.is_dir() or not ICT_FULL.is_file():
        print(f"needs {take_dir} and the ICT rig under {SHARED} (set FACECAP_SHARED)", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    rig = load_rig(ICT_FULL)
    if args.shape not in rig.shape_names or args.shape[-2:] not in ("_L", "_R"):
        print(f"--shape must be one of the rig's sided shapes, not {args.shape!r}", file=sys.stderr)
        return 2
    truth = load_animation_json(take_dir / "ground_truth.json")
    calibration = load_calibration(take_dir / "calibration.json")
    cams = CameraTensors.from_calibration(calibration)
    track = TorchRig.from_rig(rig.in_units(calibration.units), torch.device("cpu"))
    frames = np.array([f for f in FRAMES if f < truth.num_frames])
    posed_as = truth if args.fit is None else load_animation_json(args.fit)
    weights = weights_in_rig_order(posed_as, rig, truth.num_frames)[frames]
    k = rig.shape_names.index(args.shape)
    true_weight = weights_in_rig_order(truth, rig, truth.num_frames)[frames, k]
    moved = true_weight > 0 if (true_weight > 0).any() else np.ones(len(frames), bool)
    steps = args.steps or ([-0.1, -0.05, 0.0, 0.05, 0.1] if (weights[:, k] > 0).any() else [0.0, 0.05, 0.1, 0.15])

    def pose(offset: float) -> torch.Tensor:
        w = weights.copy()
        w[moved, k] = np.clip(w[moved, k] + offset, 0, 1)
        return track.evaluate(torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(posed_as.R[frames]).float(),
                              torch.as_tensor(posed_as.t[frames]).float(),
                              identity=torch.as_tensor(true_identity(truth, rig)).float())

    tri, sclera = eye_triangles(rig, args.shape[-1], not args.no_eyeballs, args.lashes)
    tri = torch.as_tensor(tri, dtype=torch.int32)
    centre = project_points(pose(0.0)[:, torch.as_tensor(sclera)].mean(1, keepdim=True), cams)[:, :, 0].mean(0)
    crops = EyeCrops(cams, centre)
    gains = json.loads((take_dir / "ground_truth.json").read_text())["generator"]["camera_gains"]
    with open_take(take_dir, calibration) as take:
        images = read_batch(take, frames, torch.device("cpu"), silhouettes=False).images
    images = images / torch.tensor([gains[name] for name in cams.names])[None, :, :, None, None]
    observed = crops.pixels(images)
    ctx = ops.make_context("torch")
    rasters = [crops.coverage(ctx, pose(step), tri) for step in steps]
    covered = torch.stack([r[2] for r in rasters]).all(0)
    energy = np.array([colour_energy(bary, vertex, covered, observed) for bary, vertex, _ in rasters])
    off = np.mean(weights[moved, k] - true_weight[moved])
    offset = "" if args.fit is None else f" (the fit is {off:+.3f} off there)"
    print(f"{args.take}, {args.shape} moved on frames {frames[moved].tolist()}{offset}, "
          f"{'face and eyeball' if not args.no_eyeballs else 'face alone'}{' and lashes' if args.lashes else ''}, "
          f"{int(covered.sum())} pixels of {len(cams)} cameras; energy above its least at each step:")
    for step, e in zip(steps, energy):
        print(f"  {step:+.3f}  {e - energy.min():9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
