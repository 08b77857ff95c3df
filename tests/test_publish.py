"""All or nothing: runs publish whole into their output folder, and a failed one leaves the old results."""

import hashlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facecap import publish
from facecap.config import field, load_config
from facecap.errors import FacecapError
from facecap.publish import PRIVATE_DIR, command_line, publishing, publishing_files, read_run


@dataclass
class Settings:
    frames: int = field(3, "frames")


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under ``folder`` (hidden ones too)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _write(run_dir: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(text)


def _run(out: Path, files: dict[str, str], config=None, command: str = "fit") -> None:
    with publishing(out, command, config) as run:
        _write(run.staging, files)


def test_a_run_publishes_its_files_config_and_run_record(tmp_path):
    out = tmp_path / "a" / "b"
    with command_line(["fit", "take", "--out", str(out)]):
        _run(out, {"animation.json": "{}", "meshes/0.obj": "v 0 0 0"}, Settings(5))
    assert sorted(p.name for p in out.iterdir()) == ["animation.json", "config.yaml", "meshes", "run.json"]
    record = read_run(out)
    assert record["complete"] is True and record["command"] == ["facecap", "fit", "take", "--out", str(out)]
    assert record["command_name"] == "fit" and record["config"] == {"frames": 5}
    assert record["files"] == ["animation.json", "config.yaml", "meshes", "run.json"]
    assert record["versions"]["numpy"] == np.__version__ and record["versions"]["facecap"]
    assert record["finished"] >= record["started"]
    assert load_config(Settings, out / "config.yaml") == Settings(5)


def test_a_new_run_replaces_every_file_of_the_old_one(tmp_path):
    out = tmp_path / "out"
    _run(out, {"animation.json": "old", "qa.mp4": "old video", "meshes/0.obj": "old"}, Settings(1))
    (out / "notes.txt").write_text("the user's")                 # not the old run's: kept
    _run(out, {"animation.json": "new", "meshes/1.obj": "new"}, Settings(2))
    assert sorted(p.name for p in out.iterdir()) == ["animation.json", "config.yaml", "meshes", "notes.txt",
                                                     "run.json"]
    assert (out / "animation.json").read_text() == "new" and [p.name for p in (out / "meshes").iterdir()] == ["1.obj"]
    assert load_config(Settings, out / "config.yaml") == Settings(2)
    assert not (out / PRIVATE_DIR).exists()


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt(), FacecapError("bad input")])
def test_a_failed_run_leaves_the_previous_results_untouched(tmp_path, failure):
    out = tmp_path / "out"
    _run(out, {"animation.json": "old", "qa.mp4": "old video"}, Settings(1))
    before = _snapshot(out)
    with pytest.raises(type(failure)):
        with publishing(out, "fit", Settings(2)) as run:
            _write(run.staging, {"animation.json": "new"})
            raise failure
    assert _snapshot(out) == before


def test_a_failed_first_run_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with publishing(tmp_path / "new" / "out", "fit") as run:
            _write(run.staging, {"a.json": "x"})
            raise RuntimeError()
    assert list(tmp_path.iterdir()) == []


def test_the_cache_is_kept_across_runs_and_failures(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with publishing(out, "fit") as run:
            (run.cache / "landmarks.npz").write_text("detections")
            raise RuntimeError()
    assert (out / PRIVATE_DIR / "cache" / "landmarks.npz").read_text() == "detections"
    _run(out, {"animation.json": "x"})
    assert (out / PRIVATE_DIR / "cache" / "landmarks.npz").is_file()
    assert sorted(p.name for p in (out / PRIVATE_DIR).iterdir()) == ["cache"]


def test_folders_it_does_not_own_are_refused(tmp_path):
    (tmp_path / "take").mkdir()
    (tmp_path / "take" / "cam00").mkdir()
    (tmp_path / "take" / ".DS_Store").write_text("")
    with pytest.raises(FacecapError, match=r"holds files that no facecap run wrote \(cam00\)"):
        _run(tmp_path / "take", {"a": "b"})
    _run(tmp_path / "synth", {"take.json": "{}"}, command="synth")
    with pytest.raises(FacecapError, match="holds the results of 'facecap synth'; a 'facecap fit' run would"):
        _run(tmp_path / "synth", {"a": "b"})
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".gitkeep").write_text("")
    _run(tmp_path / "hidden", {"a": "b"})                        # hidden entries are no one's results


def test_an_output_path_that_is_or_lies_under_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FacecapError, match=r"cannot create the output folder .*file/out: .*file is a file"):
        _run(tmp_path / "file" / "out", {"a": "b"})
    with pytest.raises(FacecapError, match="output folder .*file: a file of that name exists"):
        _run(tmp_path / "file", {"a": "b"})
    assert (tmp_path / "file").read_text() == "x"


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    with publishing(out, "fit") as run:
        with pytest.raises(FacecapError, match="another facecap run is writing to"):
            _run(out, {"a": "b"})
        _write(run.staging, {"a": "first"})
    assert (out / "a").read_text() == "first"


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, no cleanup either."""


def test_a_swap_cut_short_is_finished_by_the_next_run(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(out, {"animation.json": "old", "qa.mp4": "old", "report.json": "old"}, Settings(1))
    renames, rename = [], os.rename

    def dies_on_the_fourth(src, dst):
        renames.append(dst)
        if len(renames) == 4:
            raise _Killed()
        rename(src, dst)
    monkeypatch.setattr(publish.os, "rename", dies_on_the_fourth)
    monkeypatch.setattr(publish.shutil, "rmtree", lambda *a, **k: None)      # a killed run cleans nothing
    with pytest.raises(_Killed):
        _run(out, {"animation.json": "new", "report.json": "new"}, Settings(2))
    monkeypatch.undo()
    assert not (out / "run.json").exists() and (out / PRIVATE_DIR / "publish.json").exists()
    with pytest.raises(RuntimeError):                                        # the next run fails, but first...
        with publishing(out, "fit"):
            raise RuntimeError()
    assert read_run(out)["config"] == {"frames": 2}                          # ...it finished the swap
    assert sorted(p.name for p in out.iterdir()) == ["animation.json", "config.yaml", "report.json", "run.json"]
    assert (out / "animation.json").read_text() == "new" and not (out / PRIVATE_DIR).exists()


def test_ctrl_c_during_the_swap_waits_for_its_end(tmp_path, monkeypatch, sigint_interrupts):
    out = tmp_path / "out"
    _run(out, {"a": "old", "b": "old"})
    apply = publish._apply

    def interrupted(folder, journal):
        os.kill(os.getpid(), signal.SIGINT)
        apply(folder, journal)
    monkeypatch.setattr(publish, "_apply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(out, {"a": "new"})
    assert sorted(p.name for p in out.iterdir()) == ["a", "run.json"] and (out / "a").read_text() == "new"
    assert read_run(out)["complete"] is True


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    out = tmp_path / "out"
    _run(out, {"a": "old"})
    dead = out / PRIVATE_DIR / "staging-99999-x"
    _write(dead, {"a": "half"})
    _run(out, {"a": "new"})
    assert not (out / PRIVATE_DIR).exists() and (out / "a").read_text() == "new"


def test_single_files_are_replaced_whole_or_not_at_all(tmp_path):
    target, other = tmp_path / "rig.npz", tmp_path / "rig_report.json"
    with publishing_files(target, other) as (tmp, tmp_other):
        assert tmp.parent == tmp_path and tmp.suffix == ".npz" and tmp.name.startswith(".")
        np.savez(tmp, a=np.arange(3))
        tmp_other.write_text("{}")
    assert np.load(target)["a"].tolist() == [0, 1, 2] and json.loads(other.read_text()) == {}
    with pytest.raises(KeyboardInterrupt):
        with publishing_files(target) as (tmp,):
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt()
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    dead = tmp_path / ".rig.partial-999999999-abcd.npz"                   # left by a process killed outright
    dead.write_bytes(b"half")
    with publishing_files(target) as (tmp,):
        np.savez(tmp, a=np.arange(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rig.npz", "rig_report.json"]
    with pytest.raises(FacecapError, match="a folder of that name exists"):
        with publishing_files(tmp_path):
            pass
