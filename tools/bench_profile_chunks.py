"""Benchmark actor profiles and chunked fits on the ground-truth takes: time saved, accuracy, seams.

Usage:  python tools/bench_profile_chunks.py [--takes dev_ict_4cam dev_ict_3cam_identity] [--threads 2]
                                            [--chunk 24:8] [--split 30] [--repeat 1] [--out bench_profile]
                                            [--set key=value ...]

For each take of ../shared/data/takes (landmarks from MediaPipe, ../shared/models/face_landmarker.task):

1. ``plain``: the take fitted without a profile (the baseline), and ``profile``: a profile built from the
   take's keyframes, then the take fitted from it (the honest minimum: the profile has seen these frames).
   Their fits alternate ``--repeat`` times; the times are medians.
2. ``split``: a profile built from frames 0..S-1 only, and frames S.. fitted from it, against frames S..
   fitted without a profile; both scored on frames S.. only.
3. ``chunks``: the take in chunks of N frames overlapping by O (``--chunk N:O``), each fitted from the
   whole take's profile, stitched, against the one-piece fit from the same profile: how far the stitched
   fit is from the one-piece fit beside the one-piece fit's own error to the truth, and each seam's
   roughness against the take's motion (facecap.fit.chunks.seam_roughness).

Every fit runs in this process with ``--threads`` torch threads; the machine's load average is recorded
beside each timing. Results go to OUT/bench_profile_chunks.json.
"""

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from shared_data import FACE_LANDMARKER, ICT_FULL, SHARED, TAKES

from facecap.animation import load_animation_json
from facecap.config import load_config
from facecap.fit import FitConfig, fit_take
from facecap.fit.accuracy import animation_accuracy, true_identity
from facecap.fit.actor import ProfileTake, build_actor_profile
from facecap.fit.chunks import animation_frames, chunk_spans, fit_chunk, seam_roughness, stitch_chunks
from facecap.rig import load_rig

FIGURES = ("weight_mae_all", "weight_mae_active", "vertex_error_mean_mm", "vertex_error_p95_mm", "rotation_error_deg",
           "translation_error_mm")


def _timed(run):
    load = os.getloadavg()[0]
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start, load


def _scores(rig, anim, truth, identity):
    report = animation_accuracy(rig, anim, truth, identity=identity).as_dict()
    return {k: report[k] for k in FIGURES}


def bench_take(name: str, overrides: list[str], out: Path, repeat: int, chunk: tuple[int, int], split: int) -> dict:
    take = TAKES / name
    config = load_config(FitConfig, None, [f"landmarks.model_path={FACE_LANDMARKER}",
                                           f"landmarks.cache_dir={out / 'landmarks_cache'}", "qa_video=false",
                                           *overrides])
    rig = load_rig(ICT_FULL)
    truth = load_animation_json(take / "ground_truth.json")
    identity = true_identity(truth, rig)
    calibration = take / "calibration.json"
    work = out / name
    row: dict = {"take": name, "frames": truth.num_frames, "threads": torch.get_num_threads()}

    def fit(tag, actor=None, frames=None):
        return fit_take(take, calibration, rig, config, work / tag, frames=frames, actor=actor)

    for frames in (None, (split, None)):    # the detections that the timed fits read, cached
        fit_take(take, calibration, rig, dataclasses.replace(config, photometric=False), work / "warm-up",
                 frames=frames)
    profile, build_s, build_load = _timed(lambda: build_actor_profile([ProfileTake(take)], rig, config, work / "build"))
    row["profile_build"] = {"seconds": build_s, "load": build_load, "keyframes": profile.takes[0]["keyframes"]}
    runs = {"plain": [], "profile": []}
    results = {}
    for _ in range(repeat):
        for tag, actor in (("plain", None), ("profile", profile)):
            results[tag], seconds, load = _timed(lambda: fit(tag, actor))
            runs[tag].append({"seconds": seconds, "load": load})
    for tag in runs:
        row[tag] = {"seconds_median": statistics.median(r["seconds"] for r in runs[tag]), "runs": runs[tag],
                    **_scores(rig, results[tag].animation, truth, identity)}
    row["profile_time_ratio"] = row["profile"]["seconds_median"] / row["plain"]["seconds_median"]

    part, _, _ = _timed(lambda: build_actor_profile([ProfileTake(take, frames=(0, split))], rig, config,
                                                    work / "build_part"))
    later = animation_frames(truth, split, truth.num_frames)
    plain_later, plain_s, plain_load = _timed(lambda: fit("split_plain", frames=(split, None)))
    from_part, part_s, part_load = _timed(lambda: fit("split_profile", part, frames=(split, None)))
    row["split"] = {"profile_frames": [0, split], "fitted_frames": [split, truth.num_frames],
                    "plain": {"seconds": plain_s, "load": plain_load,
                              **_scores(rig, plain_later.animation, later, identity)},
                    "profile": {"seconds": part_s, "load": part_load,
                                **_scores(rig, from_part.animation, later, identity)}}

    chunks = chunk_spans(truth.num_frames, *chunk)
    fits, chunk_s, chunk_load = _timed(lambda: [fit_chunk(take, calibration, rig, config, c, work / f"chunk{c.index}",
                                                          out / "landmarks_cache", actor=profile) for c in chunks])
    stitched = stitch_chunks(chunks, fits)
    one_piece = results["profile"].animation
    roughness = seam_roughness(stitched.animation, chunks)
    row["chunks"] = {"chunk_frames": chunk[0], "overlap": chunk[1], "chunks": len(chunks), "seconds": chunk_s,
                     "load": chunk_load, "stitched": _scores(rig, stitched.animation, truth, identity),
                     "stitched_vs_one_piece": _scores(rig, stitched.animation, one_piece, identity),
                     "one_piece": _scores(rig, one_piece, truth, identity),
                     "seam_ratio": roughness.ratio.tolist(), "seam_ratio_one_piece":
                         seam_roughness(one_piece, chunks).ratio.tolist(),
                     "seam_ratio_truth": seam_roughness(truth, chunks).ratio.tolist()}
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--takes", nargs="+", default=["dev_ict_4cam", "dev_ict_3cam_identity"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--chunk", default="24:8", help="N:O chunks of N frames overlapping by O")
    parser.add_argument("--split", type=int, default=30, help="the profile of the split run sees frames 0..S-1")
    parser.add_argument("--repeat", type=int, default=1, help="alternating plain and profile fits")
    parser.add_argument("--out", type=Path, default=Path("bench_profile"), help="output folder")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="fit config overrides key=value")
    args = parser.parse_args()
    if not TAKES.is_dir() or not ICT_FULL.is_file() or not FACE_LANDMARKER.is_file():
        print(f"needs the ground-truth takes, the ICT rig and MediaPipe's model under {SHARED}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    chunk = tuple(int(x) for x in args.chunk.split(":"))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.takes:
        rows.append(bench_take(name, args.overrides, args.out, args.repeat, chunk, args.split))
        (args.out / "bench_profile_chunks.json").write_text(json.dumps(rows, indent=1))
    for row in rows:
        print(f"\n{row['take']} ({row['frames']} frames, {row['threads']} threads)")
        print(f"  profile build {row['profile_build']['seconds']:.0f} s; fit plain "
              f"{row['plain']['seconds_median']:.0f} s, from the profile {row['profile']['seconds_median']:.0f} s: "
              f"ratio {row['profile_time_ratio']:.2f}")
        for tag in ("plain", "profile"):
            print(f"  {tag:8s} " + ", ".join(f"{k} {row[tag][k]:.4f}" for k in FIGURES))
        for tag in ("plain", "profile"):
            split = row["split"][tag]
            print(f"  split {tag:8s} {split['seconds']:.0f} s " + ", ".join(f"{k} {split[k]:.4f}" for k in FIGURES))
        c = row["chunks"]
        print(f"  chunks {c['chunks']} of {c['chunk_frames']}:{c['overlap']} in {c['seconds']:.0f} s")
        for tag in ("one_piece", "stitched", "stitched_vs_one_piece"):
            print(f"  {tag:22s} " + ", ".join(f"{k} {c[tag][k]:.4f}" for k in FIGURES))
        print(f"  worst seam ratio {np.max(c['seam_ratio']):.2f} (one-piece at the same frames "
              f"{np.max(c['seam_ratio_one_piece']):.2f}, truth {np.max(c['seam_ratio_truth']):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
