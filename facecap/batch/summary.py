"""What a batch did: every take's status and figures, written to ``out/batch_summary.json`` and shown as a
table at the end."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facecap.publish import now, publishing_files

__all__ = ["TakeSummary", "BatchSummary", "write_summary", "summary_table", "SUMMARY_NAME"]

SUMMARY_NAME = "batch_summary.json"
SUMMARY_FORMAT = "facecap-batch-summary"
SUMMARY_VERSION = 1


@dataclass
class TakeSummary:
    """One take of a batch.

    Attributes:
        name, path: the take; out: its output folder. status: "published", "failed" or "not run" (the batch
            stopped before it). error: why it failed.
        frames, chunks: its frames and chunks; chunks_reused: chunks a run before this one had finished.
        compute_seconds: its chunks' fits' wall times summed (reused ones' as they were measured);
            wall_seconds: from its first task to its publication in this run.
        landmark_error_px, photometric_rms: medians over its frames; seam_worst: its roughest seam against the
            take's motion (<= 1: no rougher; :func:`facecap.fit.chunks.seam_roughness`).
        actor: the profile it was fitted from (a path), or "built from frames A..B" where the batch built it.
    """

    name: str
    path: str
    out: str
    status: str = "not run"
    error: str | None = None
    frames: int = 0
    chunks: int = 0
    chunks_reused: int = 0
    compute_seconds: float = 0.0
    wall_seconds: float = 0.0
    landmark_error_px: float | None = None
    photometric_rms: float | None = None
    seam_worst: float | None = None
    actor: str | None = None


@dataclass
class BatchSummary:
    """A whole batch: its takes, how it ran (``workers`` parallel tasks, ``gpus_per_task``, the Ray cluster's
    ``resources`` and ``address``) and its totals."""

    manifest: str
    takes: list[TakeSummary]
    workers: int = 0
    gpus_per_task: float = 0.0
    address: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    started: str = field(default_factory=now)
    finished: str | None = None
    wall_seconds: float = 0.0
    frames_fitted: int = 0

    @property
    def frames_per_second(self) -> float:
        """Frames fitted in this run (reused chunks' not counted) per second of the batch's wall time."""
        return self.frames_fitted / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        counts = {s: sum(t.status == s for t in self.takes) for s in ("published", "failed", "not run")}
        return {"format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, **asdict(self),
                "frames_per_second": self.frames_per_second, "takes_by_status": counts}


def write_summary(summary: BatchSummary, path: Path) -> None:
    """Write the summary's JSON to ``path``, whole or not at all."""
    with publishing_files(path) as (tmp,):
        Path(tmp).write_text(json.dumps(summary.as_dict(), indent=1))


def summary_table(summary: BatchSummary) -> str:
    """The summary as a text table: one row a take, then the totals."""
    header = f"{'take':24s} {'status':10s} {'frames':>7s} {'chunks':>9s} {'compute s':>10s} {'frames/s':>9s} " \
             f"{'landmark px':>11s} {'photo rms':>9s} {'seam':>5s}"
    rows = [header, "-" * len(header)]

    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)
    for take in summary.takes:
        rate = take.frames / take.compute_seconds if take.compute_seconds > 0 else None
        rows.append(f"{take.name[:24]:24s} {take.status:10s} {take.frames:7d} "
                    f"{f'{take.chunks - take.chunks_reused}+{take.chunks_reused}':>9s} "
                    f"{take.compute_seconds:10.1f} {number(rate, '9.3f'):>9s} "
                    f"{number(take.landmark_error_px, '11.2f'):>11s} {number(take.photometric_rms, '9.2f'):>9s} "
                    f"{number(take.seam_worst, '5.2f'):>5s}")
        if take.error:
            rows.append(f"    error: {take.error}")
    done = sum(t.status == "published" for t in summary.takes)
    rows.append(f"{done} of {len(summary.takes)} takes published; {summary.frames_fitted} frames fitted in "
                f"{summary.wall_seconds:.1f} s ({summary.frames_per_second:.3f} frames/s) by {summary.workers} "
                f"workers (chunks: fitted+reused)")
    return "\n".join(rows)
