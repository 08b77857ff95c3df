"""The batch manifest: its minimal form, globs, per-take keys, and errors that name the key; without Ray the batch
says how to install it."""

import pytest

from facecap.batch.manifest import load_manifest
from facecap.errors import ConfigError, FacecapError


@pytest.fixture
def folders(tmp_path):
    """Take folders a1, a2, b1 under takes/ (the manifest only lists them) and a rig path: (root, rig, takes)."""
    takes = {name: tmp_path / "takes" / name for name in ("a1", "a2", "b1")}
    for folder in takes.values():
        folder.mkdir(parents=True)
    (tmp_path / "takes" / "notes.txt").write_text("not a take")
    return tmp_path, tmp_path / "rig.npz", takes


def test_manifest_minimal_form_globs_and_placeholders(folders, tmp_path):
    root, rig_path, takes = folders
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"rig: {rig_path}\nout: fits\ntakes: ['{root / 'takes' / '*'}']\n")
    loaded = load_manifest(manifest)
    assert [t.name for t in loaded.takes] == ["a1", "a2", "b1"]
    assert loaded.out == tmp_path / "fits" and all(t.actor is None and t.landmarks is None for t in loaded.takes)
    assert loaded.takes[0].calibration == takes["a1"] / "calibration.json"
    manifest.write_text(f"rig: {rig_path}\nout: fits\nlandmarks: '{{take}}/landmarks.json'\nactor: a.npz\n"
                        f"takes: [{{take: '{takes['b1']}', actor: b.npz}}, '{takes['a1']}']\n"
                        "set: [schedule.passes=1]\nchunk_frames: 40\nchunk_overlap: 8\n")
    loaded = load_manifest(manifest)
    assert [(t.name, t.actor.name) for t in loaded.takes] == [("b1", "b.npz"), ("a1", "a.npz")]
    assert loaded.takes[0].landmarks == takes["b1"] / "landmarks.json"
    assert loaded.config.schedule.passes == 1 and (loaded.chunk_frames, loaded.chunk_overlap) == (40, 8)


@pytest.mark.parametrize("text, message", [
    ("out: o\ntakes: [x]\n", "key 'rig' is required"),
    ("rig: r.npz\nout: o\ntakes: [x]\nworkers: 2\n", "unknown key 'workers'"),
    ("rig: r.npz\nout: o\ntakes: ['nothing_here_*']\n", "matches no folder"),
    ("rig: r.npz\nout: o\ntakes: [missing_take]\n", "take folder not found"),
    ("rig: r.npz\nout: o\ntakes: [TAKES, TAKES]\n", "two takes are named"),
    ("rig: r.npz\nout: o\ntakes: [TAKES]\nchunk_frames: 10\nchunk_overlap: 5\n", "at most half of chunk_frames"),
    ("rig: r.npz\nout: o\ntakes: [TAKES]\nset: [schedule.passes=many]\n", "schedule.passes"),
    ("rig: r.npz\nout: o\ntakes: [{take: TAKES, camera: x}]\n", "not 'camera'"),
])
def test_manifest_errors_name_the_key(folders, tmp_path, text, message):
    _, _, takes = folders
    path = tmp_path / "m.yaml"
    path.write_text(text.replace("TAKES", str(takes["a1"])))
    with pytest.raises(ConfigError, match=message):
        load_manifest(path)


def test_batch_without_ray_says_how_to_install_it(monkeypatch):
    import sys

    from facecap.batch.runner import import_ray
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(FacecapError, match=r"pip install 'facecap\[batch\]'"):
        import_ray()
