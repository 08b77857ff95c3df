"""A batch on Ray: every take of a manifest in chunks, each chunk a Ray task, each take published when its
chunks are done.

The driver (this module, in the ``facecap batch`` process) plans every take's chunks
(:func:`facecap.fit.chunks.chunk_spans`), skips the chunks a run before it finished (:class:`ChunkStore`),
and keeps at most ``workers`` tasks in flight, a take's chunks in order, take after take. A task fits one
chunk on one core (one torch and one BLAS thread), or on one GPU where the cluster has GPUs. A take
without an actor profile is first given one, built from the keyframes of its first chunk (a task too),
so that all its chunks start from the same performer; a take of one chunk is fitted as ``facecap fit``
fits it.

Results come back to the driver through Ray's object store, and only the driver writes: each finished
chunk into the take's cache, each finished take into ``out/<take>/`` through
:func:`facecap.publish.publishing` (the take's folder is locked from its first task to its publication,
and published all or nothing, as ``facecap fit`` publishes). A task whose worker dies (killed, out of
memory, its node lost) is run again by Ray, up to the manifest's ``retries``; a task that raises, or
runs out of retries, fails its take, whose folder keeps its previous results, and the batch goes on
with the other takes. The workers read the takes, rigs and profiles at the paths the manifest gives, so
on a cluster of several machines those paths must be the same on every node (shared storage).
"""

import json
import logging
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facecap.batch.manifest import Manifest, TakeJob
from facecap.batch.store import ChunkStore
from facecap.batch.summary import SUMMARY_NAME, BatchSummary, TakeSummary, write_summary
from facecap.batch.tasks import ChunkTask, run_chunk, run_profile
from facecap.camera.model import load_calibration
from facecap.errors import ConfigError, FacecapError
from facecap.fit.actor import ActorProfile, load_actor, save_actor
from facecap.fit.checkpoint import config_fingerprint, digest, rig_digest, take_digest
from facecap.fit.chunks import Chunk, chunk_spans, seam_roughness, stitch_chunks
from facecap.fit.config import FitConfig
from facecap.fit.outputs import write_fit_outputs
from facecap.fit.qa import join_videos
from facecap.fit.result import FitResult
from facecap.progress import Bar, progress
from facecap.publish import PRIVATE_DIR, Run, now, publishing
from facecap.rig.io import load_rig
from facecap.take.reader import open_take

__all__ = ["run_batch", "import_ray"]

log = logging.getLogger(__name__)

CHUNKS_FILE = "chunks.json"     # beside a chunked take's exports: its chunks and seams
ACTOR_FILE = "actor.npz"        # beside the exports of a take whose profile the batch built


def import_ray() -> Any:
    """Ray, or a FacecapError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FacecapError("facecap batch runs on Ray, which is not installed: pip install 'facecap[batch]'") from None
    return ray


@dataclass
class _Take:
    """A take's progress through the batch (the driver's own bookkeeping)."""

    job: TakeJob
    summary: TakeSummary
    config: FitConfig
    chunks: list[Chunk] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    store: ChunkStore | None = None
    actor: ActorProfile | None = None          # the profile its chunks start from
    profile_fingerprint: str | None = None     # where the batch builds the profile: what it depends on
    results: dict[int, FitResult] = field(default_factory=dict)
    publish: ExitStack | None = None
    run: Run | None = None
    started: float | None = None

    @property
    def builds_profile(self) -> bool:
        return self.profile_fingerprint is not None

    @property
    def complete(self) -> bool:
        """Every chunk is fitted (and the profile the batch builds for it is built)."""
        return len(self.results) == len(self.chunks) and (self.actor is not None or not self.builds_profile)


@dataclass(frozen=True)
class _Bars:
    """The batch's progress: takes done, chunks done, frames done (whose rate is the batch's frames/s)."""

    takes: Bar
    chunks: Bar
    frames: Bar


@dataclass(frozen=True)
class _Work:
    """A task to submit: the take's profile (``chunk`` None) or one of its chunks."""

    take: _Take
    chunk: int | None = None


class _Batch:
    """The driver of one batch run."""

    def __init__(self, manifest: Manifest, ray: Any, workers: int, gpus_per_task: float) -> None:
        self.manifest, self.ray, self.workers, self.gpus = manifest, ray, workers, gpus_per_task
        self.config = manifest.config
        self.rig = load_rig(manifest.rig)
        self.tracking = load_rig(manifest.tracking_rig) if manifest.tracking_rig else None
        if self.tracking is not None and self.tracking.shape_names != self.rig.shape_names:
            raise FacecapError(f"{manifest.tracking_rig}: the tracking rig's shape names differ from the rig's")
        self.inputs = [digest(rig_digest(self.rig), rig_digest(self.tracking or self.rig))]
        options = {"num_cpus": 1, "num_gpus": gpus_per_task, "max_retries": manifest.retries,
                   "retry_exceptions": False}
        self.chunk_task = ray.remote(run_chunk).options(**options)
        self.profile_task = ray.remote(run_profile).options(**options)
        self.refs: dict[str, Any] = {}
        self.cancelled: list[Any] = []           # tasks of failed takes, whose ends are waited for and dropped
        self.queue: deque[_Work] = deque()
        self.running: dict[Any, _Work] = {}
        self.frames_fitted = 0

    # -- planning ---------------------------------------------------------------------------------------------

    def plan(self, job: TakeJob, profiles: dict[Path, ActorProfile]) -> _Take:
        """The take's chunks, their fingerprints and its profile."""
        out = self.manifest.out / job.name
        take = _Take(job, TakeSummary(job.name, str(job.path), str(out)), self.config)
        if job.landmarks is not None:
            if not job.landmarks.is_file():
                raise FacecapError(f"landmarks file not found: {job.landmarks}")
            take.config = replace(self.config, landmarks=replace(self.config.landmarks,
                                                                 landmarks_file=str(job.landmarks)))
        if job.actor is not None:
            if job.actor not in profiles:
                profiles[job.actor] = load_actor(job.actor)
            take.actor = profiles[job.actor]
            take.summary.actor = str(job.actor)
        calibration = load_calibration(job.calibration)
        with open_take(job.path, calibration, cameras=self.config.cameras or None) as opened:
            frames = opened.num_frames
            inputs = [*self.inputs, digest(config_fingerprint(take.config)), take_digest(opened),
                      _file_digest(job.calibration)]
        if job.landmarks is not None:
            inputs.append(_file_digest(job.landmarks))
        take.chunks = chunk_spans(frames, self.manifest.chunk_frames, self.manifest.chunk_overlap)
        take.store = ChunkStore(out / PRIVATE_DIR / "cache")
        if take.actor is None and len(take.chunks) > 1:
            take.profile_fingerprint = digest(*inputs, "profile", take.chunks[0].frames)
            take.summary.actor = f"built from frames {take.chunks[0].start}..{take.chunks[0].stop - 1}"
        source = take.actor.digest() if take.actor is not None else take.profile_fingerprint
        take.fingerprints = [digest(*inputs, source, c.frames) for c in take.chunks]
        take.summary.frames, take.summary.chunks = frames, len(take.chunks)
        return take

    def resume(self, take: _Take) -> None:
        """Take up what a run before finished, and queue the rest of the take's work."""
        for chunk, fingerprint in zip(take.chunks, take.fingerprints):
            result = take.store.load_chunk(chunk.index, fingerprint)
            if result is not None:
                take.results[chunk.index] = result
        take.summary.chunks_reused = len(take.results)
        if take.builds_profile:
            take.actor = take.store.load_profile(take.profile_fingerprint)
            if take.actor is None:
                self.queue.append(_Work(take))
                return
        self.queue.extend(_Work(take, c.index) for c in take.chunks if c.index not in take.results)

    # -- tasks ------------------------------------------------------------------------------------------------

    def _ref(self, key: str, value: Any) -> Any:
        """``value`` put in Ray's object store once (rigs, config, profiles travel to the workers once)."""
        if key not in self.refs:
            self.refs[key] = self.ray.put(value)
        return self.refs[key]

    def submit(self, work: _Work) -> None:
        take = work.take
        tracking = self._ref("tracking rig", self.tracking or self.rig)
        config = self._ref(f"config {take.job.landmarks}", take.config)
        if work.chunk is None:
            ref = self.profile_task.remote(take.job.path, take.job.calibration, take.chunks[0].frames, tracking, config,
                                           take.store.root)
        else:
            actor = None if take.actor is None else self._ref(f"actor {take.actor.digest()}", take.actor)
            spec = ChunkTask(take.job.path, take.job.calibration, take.chunks[work.chunk], take.store.root)
            ref = self.chunk_task.remote(spec, self._ref("rig", self.rig), tracking, config, actor)
        self.running[ref] = work

    # -- the take's folder ------------------------------------------------------------------------------------

    def open_take(self, take: _Take) -> None:
        """Lock the take's output folder and stage its run (from its first task to its publication)."""
        if take.publish is None:
            stack = ExitStack()
            take.run = stack.enter_context(publishing(Path(take.summary.out), "fit", take.config))
            take.publish, take.started = stack, time.perf_counter()

    def fail(self, take: _Take, error: BaseException) -> None:
        """The take failed: its tasks are cancelled, its staged run removed (its folder keeps its results)."""
        message = str(getattr(error, "cause", None) or error).strip().splitlines()
        take.summary.status, take.summary.error = "failed", message[-1] if message else type(error).__name__
        log.error("take %s failed: %s", take.job.name, take.summary.error)
        for ref, work in list(self.running.items()):
            if work.take is take:
                self.ray.cancel(ref)
                self.cancelled.append(ref)
                del self.running[ref]
        self.queue = deque(w for w in self.queue if w.take is not take)
        if take.publish is not None:
            take.publish.__exit__(type(error), error, error.__traceback__)
            take.publish = None
        take.results.clear()

    def finish(self, take: _Take) -> None:
        """All the take's chunks are done: stitch them and publish its outputs."""
        self.open_take(take)
        staging = take.run.staging
        fits = [take.results[c.index] for c in take.chunks]
        qa = staging / "qa.mp4" if all(f.qa_video is not None for f in fits) else None
        if qa is not None:
            join_videos([f.qa_video for f in fits], qa)
        result = stitch_chunks(take.chunks, fits, qa)
        write_fit_outputs(result, self.rig, take.config, staging)
        roughness = seam_roughness(result.animation, take.chunks)
        if len(take.chunks) > 1:
            (staging / CHUNKS_FILE).write_text(_chunks_record(take, fits, roughness.ratio))
        if take.builds_profile:
            save_actor(take.actor, staging / ACTOR_FILE)
        take.publish.close()
        take.publish = None
        s = take.summary
        s.status = "published"
        s.compute_seconds = float(sum(f.seconds.get("total", 0.0) for f in fits))
        s.wall_seconds = time.perf_counter() - take.started
        s.landmark_error_px = float(np.median(result.landmark_error_px))
        photometric = result.photometric_rms[np.isfinite(result.photometric_rms)]
        s.photometric_rms = float(np.median(photometric)) if photometric.size else None
        s.seam_worst = roughness.worst if len(take.chunks) > 1 else None
        take.results.clear()
        log.info("take %s published to %s (%d frames, %d chunks)", take.job.name, s.out, s.frames, s.chunks)

    # -- the loop ---------------------------------------------------------------------------------------------

    def run(self, takes: list[_Take], summary: BatchSummary) -> None:
        """Submit the queued work, at most ``workers`` tasks at once, and take in each result as it comes."""
        self.summary = summary
        live = [t for t in takes if t.summary.status != "failed"]
        with progress(len(takes), "takes", "take") as takes_bar, \
                progress(sum(len(t.chunks) for t in live), "chunks", "chunk") as chunks_bar, \
                progress(sum(t.summary.frames for t in live), "batch", "frame") as frames_bar:
            self.bars = _Bars(takes_bar, chunks_bar, frames_bar)
            takes_bar.update(len(takes) - len(live))
            for take in live:
                chunks_bar.update(len(take.results))
                frames_bar.update(sum(c.own_stop - c.own_start for c in take.chunks if c.index in take.results))
                if take.complete:
                    self._publish(take)
            while self._fill():
                self._collect()

    def _fill(self) -> bool:
        """Submit queued work while fewer than ``workers`` tasks run; whether any task runs."""
        while self.queue and len(self.running) < self.workers:
            work = self.queue.popleft()
            try:
                self.open_take(work.take)
            except FacecapError as err:
                self._failed(work.take, err)
                continue
            self.submit(work)
        return bool(self.running)

    def _collect(self) -> None:
        """Wait for a task to finish and take in its result (a cancelled task's end is dropped)."""
        ready, _ = self.ray.wait(list(self.running) + self.cancelled, num_returns=1)
        work = self.running.pop(ready[0], None)
        if work is None:
            self.cancelled.remove(ready[0])
            try:
                self.ray.get(ready[0])
            except self.ray.exceptions.RayError:
                pass
            return
        take = work.take
        try:
            value = self.ray.get(ready[0])
        except self.ray.exceptions.RayError as err:
            self._failed(take, err)
            return
        if work.chunk is None:
            take.actor = value
            take.store.save_profile(take.profile_fingerprint, value)
            self.queue.extendleft(_Work(take, c.index) for c in reversed(take.chunks) if c.index not in take.results)
        else:
            chunk = take.chunks[work.chunk]
            result, qa = value
            take.results[chunk.index] = take.store.save_chunk(chunk.index, take.fingerprints[chunk.index], result, qa)
            self.frames_fitted += chunk.own_stop - chunk.own_start
            self.bars.chunks.update(1)
            self.bars.frames.update(chunk.own_stop - chunk.own_start)
            log.info("take %s: chunk %d of %d (frames %d..%d) fitted in %.1f s", take.job.name, chunk.index + 1,
                     len(take.chunks), chunk.start, chunk.stop - 1, result.seconds.get("total", 0.0))
        if take.complete:
            self._publish(take)

    def _publish(self, take: _Take) -> None:
        try:
            self.finish(take)
        except (FacecapError, OSError, RuntimeError, ValueError) as err:   # this take's: the batch goes on
            log.debug("publishing take %s failed", take.job.name, exc_info=True)
            self.fail(take, err)
        self._take_done()

    def _failed(self, take: _Take, error: BaseException) -> None:
        self.fail(take, error)
        self._take_done()

    def _take_done(self) -> None:
        self.bars.takes.update(1)
        write_summary(self.summary, self.manifest.out / SUMMARY_NAME)

    def close(self, error: BaseException | None) -> None:
        """Remove the staged runs of takes still open (the batch stops: their folders keep their results)."""
        for work in list(self.running.values()) + list(self.queue):
            if work.take.publish is not None:
                stack, work.take.publish = work.take.publish, None
                if error is None:
                    error = FacecapError("the batch stopped")
                stack.__exit__(type(error), error, error.__traceback__)


def _file_digest(path: Path) -> str:
    return digest(np.frombuffer(path.read_bytes(), np.uint8))


def _chunks_record(take: _Take, fits: list[FitResult], seam_ratio: np.ndarray) -> str:
    """chunks.json: the take's chunks (frames, the frames each owns, its fit's seconds) and its seams' roughness."""
    return json.dumps({
        "chunk_frames": take.chunks[0].num_frames, "actor": take.summary.actor,
        "chunks": [{"index": c.index, "frames": [c.start, c.stop], "owns": [c.own_start, c.own_stop],
                    "seconds": f.seconds.get("total")} for c, f in zip(take.chunks, fits)],
        "seams": [{"frames": [b.start, a.stop], "ratio_weights": float(r[0]), "ratio_rotation": float(r[1]),
                   "ratio_translation": float(r[2])}
                  for a, b, r in zip(take.chunks, take.chunks[1:], seam_ratio)]}, indent=1)


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Connect to the Ray cluster at ``address``, or start a local one (of ``workers`` CPUs when given);
    returns whether this call started the connection (an existing one is used as it is)."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise FacecapError(f"cannot {'join the Ray cluster at ' + address if address else 'start Ray'}: {err}") from err
    return True


def run_batch(manifest: Manifest, workers: int | None = None, address: str | None = None,
              gpus_per_task: float | None = None) -> BatchSummary:
    """Fit every take of ``manifest`` on a Ray cluster (see the module docstring).

    Args:
        manifest: the batch.
        workers: at most this many tasks at once (default: as many as the cluster has CPUs, or GPUs when
            tasks take GPUs); a local cluster is started with this many CPUs.
        address: a Ray cluster to join (``auto``: the one this machine is part of); None: the connection
            already made in this process, or a local cluster.
        gpus_per_task: GPUs each task takes (default: 1 on a cluster with GPUs unless the config's device is
            cpu, else 0).
    Returns:
        The summary, also written to ``out/batch_summary.json``.
    """
    ray = import_ray()
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    started = time.perf_counter()
    summary = BatchSummary(str(manifest.source), [], address=address)
    manifest.out.mkdir(parents=True, exist_ok=True)
    connected = _connect(ray, address, workers)
    batch = None
    try:
        resources = {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}
        gpus = resources.get("GPU", 0.0)
        if gpus_per_task is None:
            gpus_per_task = 1.0 if gpus > 0 and manifest.config.device != "cpu" else 0.0
        if gpus_per_task > gpus:
            raise FacecapError(f"each task asks for {gpus_per_task:g} GPU(s) but the Ray cluster has {gpus:g}")
        if manifest.config.device.startswith("cuda") and gpus_per_task == 0:
            raise ConfigError(f"config key 'device' is {manifest.config.device} but the batch's tasks take no GPU")
        capacity = int(gpus // gpus_per_task) if gpus_per_task > 0 else int(resources.get("CPU", 1))
        batch = _Batch(manifest, ray, workers or max(capacity, 1), gpus_per_task)
        summary.workers, summary.gpus_per_task, summary.resources = batch.workers, gpus_per_task, resources
        profiles: dict[Path, ActorProfile] = {}
        takes = []
        for job in manifest.takes:
            try:
                take = batch.plan(job, profiles)
            except (FacecapError, OSError) as err:
                out = str(manifest.out / job.name)
                take = _Take(job, TakeSummary(job.name, str(job.path), out, "failed", str(err)), manifest.config)
                log.error("take %s failed: %s", job.name, err)
            takes.append(take)
            summary.takes.append(take.summary)
        for take in takes:
            if take.summary.status != "failed":
                batch.resume(take)
        log.info("batch: %d takes, %d chunks (%d done before), %d workers, %s", len(takes),
                 sum(len(t.chunks) for t in takes), sum(t.summary.chunks_reused for t in takes), batch.workers,
                 ", ".join(f"{k} {v:g}" for k, v in resources.items() if k != "memory"))
        batch.run(takes, summary)
    except BaseException as err:
        if batch is not None:
            batch.close(err)
        raise
    finally:
        summary.wall_seconds = time.perf_counter() - started
        summary.frames_fitted = 0 if batch is None else batch.frames_fitted
        summary.finished = now()
        write_summary(summary, manifest.out / SUMMARY_NAME)
        if connected:
            ray.shutdown()
    return summary
