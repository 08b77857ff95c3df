"""``facecap batch``: the takes of a manifest fitted in chunks on a Ray cluster."""

import argparse
from typing import Any

from facecap.cli.common import add_command


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "batch",
        "Fit every take a manifest lists (docs/formats.md): each take is split into chunks of chunk_frames frames "
        "that overlap by chunk_overlap, each chunk is fitted as a Ray task (one core, or one GPU on a cluster "
        "with GPUs) from the performer's actor profile (built from the take's first chunk where the manifest "
        "gives none), and the chunks are cross-faded into one fit. Each take's results go to OUT/<take name>/ "
        "as 'facecap fit' writes them, all or nothing, when its chunks are done; OUT/batch_summary.json lists "
        "every take's status and figures. Finished chunks are kept in OUT/<take>/.facecap/cache: a batch run "
        "again skips them. A chunk whose worker dies is run again (retries); a take whose chunk fails keeps its "
        "folder's previous results, and the batch goes on. Needs Ray: pip install 'facecap[batch]'. Exit "
        "status 1 when a take failed.",
        ["facecap batch shoot.yaml                      # a local Ray cluster of this machine's cores",
         "facecap batch shoot.yaml --workers 2          # at most two chunks at once",
         "facecap batch shoot.yaml --address auto       # on the cluster of 'ray start --head' / '--address'"])
    parser.add_argument("manifest", help="the batch's YAML manifest (rig, out, takes; optional config, set, actor, "
                                         "tracking_rig, chunk_frames, chunk_overlap, retries)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="at most N chunks fitted at once (default: the cluster's CPUs, or GPUs when tasks take "
                             "GPUs); a local cluster is started with N CPUs")
    parser.add_argument("--address", metavar="ADDR",
                        help="join the Ray cluster at ADDR (auto: the one this machine belongs to) instead of "
                             "starting a local one")
    parser.add_argument("--gpus-per-task", type=float, metavar="G",
                        help="GPUs each chunk takes (default: 1 on a cluster with GPUs unless the config's device is "
                             "cpu, else 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facecap.batch.manifest import load_manifest
    from facecap.batch.runner import run_batch
    from facecap.batch.summary import SUMMARY_NAME, summary_table
    manifest = load_manifest(args.manifest)
    summary = run_batch(manifest, workers=args.workers, address=args.address, gpus_per_task=args.gpus_per_task)
    print(summary_table(summary))
    print(f"summary: {manifest.out / SUMMARY_NAME}")
    return 0 if all(t.status == "published" for t in summary.takes) else 1
