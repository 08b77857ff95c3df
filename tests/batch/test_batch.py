"""``facecap batch`` on a local Ray cluster of two workers: three tiny takes of two performers, a worker killed
mid-chunk, results equal to single-process fits of the same chunks, a rerun that skips the finished chunks."""

import dataclasses
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facecap.animation import load_animation_json
from facecap.batch.manifest import load_manifest
from facecap.batch.summary import SUMMARY_NAME
from facecap.batch.tasks import ChunkTask, run_chunk, run_profile
from facecap.cli import main
from facecap.fit.actor import ProfileTake, build_actor_profile, load_actor, save_actor
from facecap.fit.chunks import chunk_spans, stitch_chunks
from facecap.rig import load_rig
from facecap.testing.small_takes import short_fit_config, write_manifest
from tests.batch.conftest import CHUNK_FRAMES, CHUNK_OVERLAP, TAKE_FRAMES

ray = pytest.importorskip("ray", reason="facecap batch needs Ray: pip install 'facecap[batch]'")


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
    return False


class ChunkKiller(threading.Thread):
    """Kills (SIGKILL) the first of this process's Ray workers seen fitting a chunk, once it has run ``after``
    seconds: a worker lost mid-chunk."""

    def __init__(self, after: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.after, self.killed, self.stop = after, None, threading.Event()

    def run(self) -> None:
        seen: dict[int, float] = {}
        while not self.stop.is_set() and self.killed is None:
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    title = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
                except OSError:
                    continue
                if title == b"ray::run_chunk" and _descends_from(int(entry), os.getpid()):
                    first = seen.setdefault(int(entry), time.monotonic())
                    if time.monotonic() - first >= self.after:
                        os.kill(int(entry), signal.SIGKILL)
                        self.killed = int(entry)
                        return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs for this module's batches."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def batch(two_performers, cluster, tmp_path_factory):
    """The batch of a1, a2 (performer A, from the profile of a1) and b1 (performer B, no profile: the batch builds
    one), fitted by two workers while one worker is killed mid-chunk: (root, manifest, summary, killer, profile A)."""
    from facecap.batch.runner import run_batch
    root, rig_path, takes = two_performers
    work = tmp_path_factory.mktemp("batch_run")
    rig = load_rig(rig_path)
    config = short_fit_config()
    profile = build_actor_profile([ProfileTake(takes["a1"])], rig, _with_landmarks(config, takes["a1"]), work / "build")
    save_actor(profile, work / "a.npz")
    manifest = write_manifest(work / "shoot.yaml", rig_path, work / "out",
                              [{"take": str(root / "takes" / "a*"), "actor": str(work / "a.npz")}, str(takes["b1"])],
                              config, landmarks="{take}/landmarks.json", chunk_frames=CHUNK_FRAMES,
                              chunk_overlap=CHUNK_OVERLAP)
    killer = ChunkKiller()
    killer.start()
    try:
        summary = run_batch(load_manifest(manifest), workers=2)
    finally:
        killer.stop.set()
    return work, manifest, summary, killer, profile


def _with_landmarks(config, take: Path):
    """``config`` with the take's landmarks file, as the manifest's ``landmarks: '{take}/landmarks.json'`` gives."""
    return dataclasses.replace(config, landmarks=dataclasses.replace(config.landmarks,
                                                                     landmarks_file=str(take / "landmarks.json")))


def _in_process(take: Path, config, rig, actor, cache: Path):
    """The take's chunks fitted one by one in this process, as a task fits them: (chunks, fits)."""
    chunks = chunk_spans(TAKE_FRAMES, CHUNK_FRAMES, CHUNK_OVERLAP)
    fits = [run_chunk(ChunkTask(take, take / "calibration.json", c, cache), rig, rig, config, actor)[0]
            for c in chunks]
    return chunks, fits


@pytest.mark.slow
def test_batch_of_two_performers_equals_single_process_fits_of_its_chunks(batch, two_performers, tmp_path):
    """Every take is published; one worker was killed mid-chunk and its chunk was run again; each chunk's fit is
    exactly what this process computes for it (one thread each), and each take's published animation is their
    stitch. Performer B's chunks start from the profile the batch built of its first chunk, which is the one this
    process builds."""
    work, manifest, summary, killer, profile_a = batch
    root, rig_path, takes = two_performers
    rig = load_rig(rig_path)
    assert killer.killed is not None, "no worker was seen fitting a chunk"
    assert [t.status for t in summary.takes] == ["published"] * 3, [t.error for t in summary.takes]
    assert [t.name for t in summary.takes] == ["a1", "a2", "b1"]
    assert all(t.chunks == 2 and t.chunks_reused == 0 for t in summary.takes)
    assert summary.frames_fitted == 3 * TAKE_FRAMES and summary.workers == 2
    written = json.loads((work / "out" / SUMMARY_NAME).read_text())
    assert written["takes_by_status"] == {"published": 3, "failed": 0, "not run": 0}

    config = short_fit_config()
    b_profile = run_profile(takes["b1"], takes["b1"] / "calibration.json", (0, CHUNK_FRAMES), rig,
                            _with_landmarks(config, takes["b1"]), tmp_path / "b1")
    assert load_actor(work / "out" / "b1" / "actor.npz").digest() == b_profile.digest()
    for name, actor in (("a1", profile_a), ("a2", profile_a), ("b1", b_profile)):
        take_config = _with_landmarks(config, takes[name])
        chunks, fits = _in_process(takes[name], take_config, rig, actor, tmp_path / name)
        stored = sorted((work / "out" / name / ".facecap" / "cache" / "chunks").glob("chunk-*.npz"))
        assert len(stored) == len(chunks)
        for fit, path in zip(fits, stored):
            with np.load(path) as data:
                np.testing.assert_array_equal(data["weights"], fit.animation.weights)
                np.testing.assert_array_equal(data["R"], fit.animation.R)
                np.testing.assert_array_equal(data["t"], fit.animation.t)
        published = load_animation_json(work / "out" / name / "animation.json")
        stitched = stitch_chunks(chunks, fits).animation
        np.testing.assert_allclose(published.weights, stitched.weights, atol=1e-9)
        np.testing.assert_allclose(published.t, stitched.t, atol=1e-9)
        run = json.loads((work / "out" / name / "run.json").read_text())
        assert run["complete"] and run["command_name"] == "fit" and "qa.mp4" in run["files"]
        seams = json.loads((work / "out" / name / "chunks.json").read_text())["seams"]
        assert [s["frames"] for s in seams] == [[chunks[1].start, chunks[0].stop]]


@pytest.mark.slow
def test_batch_run_again_skips_finished_chunks_and_a_failed_take_keeps_its_folder(batch, two_performers, capsys):
    """The same manifest again, with a take that cannot be read added: the three takes are published again from
    their stored chunks (no chunk fitted, the same animations), the broken one fails with its reason and leaves
    its folder alone, and the command says so (exit status 1)."""
    work, manifest, _, _, _ = batch
    root, _, takes = two_performers
    before = {n: (work / "out" / n / "animation.json").read_bytes() for n in ("a1", "a2", "b1")}
    broken = root / "takes_broken" / "c1"                            # a calibration and landmarks, no cameras
    broken.mkdir(parents=True, exist_ok=True)
    shutil.copy(takes["a1"] / "calibration.json", broken / "calibration.json")
    (broken / "landmarks.json").write_text("{}")
    (work / "out" / "c1").mkdir(parents=True, exist_ok=True)
    (work / "out" / "c1" / "notes.txt").write_text("kept")
    text = manifest.read_text().replace("takes:\n", f"takes:\n- {broken}\n")
    manifest.write_text(text)
    assert main(["-q", "batch", str(manifest), "--workers", "2"]) == 1
    shown = capsys.readouterr().out
    assert "3 of 4 takes published; 0 frames fitted" in shown and "no cameras found" in shown
    summary = json.loads((work / "out" / SUMMARY_NAME).read_text())
    by_name = {t["name"]: t for t in summary["takes"]}
    assert by_name["c1"]["status"] == "failed" and "no cameras found" in by_name["c1"]["error"]
    assert all(by_name[n]["status"] == "published" and by_name[n]["chunks_reused"] == 2 for n in before)
    for name, content in before.items():
        assert (work / "out" / name / "animation.json").read_bytes() == content
    assert (work / "out" / "c1" / "notes.txt").read_text() == "kept"
