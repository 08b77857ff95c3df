"""End to end: facecap tune-rig --make-example, then tuning on a tiny rig with the LS tracker."""

import json

import numpy as np

from facecap.cli import main
from facecap.rig import load_rig, save_rig


def test_tune_rig_command(tmp_path, ict_face_rig):
    rig_path = tmp_path / "rig.npz"
    save_rig(ict_face_rig.subset(np.arange(0, ict_face_rig.num_vertices, 64)), rig_path)
    assert main(["tune-rig", "--rig", str(rig_path), "--make-example", str(tmp_path / "simon.npz")]) == 0
    out = tmp_path / "out" / "tuned.npz"
    assert main(["tune-rig", "--rig", str(rig_path), "--expressions", str(tmp_path / "simon.npz"), "--out", str(out),
                 "--set", "tracker=ls", "--set", "ls.box=false", "--set", "solver.max_iters=2",
                 "--set", "solver.dvhat=none", "--set", "stages=[primary]"]) == 0
    tuned = load_rig(out)
    assert tuned.shape_names == load_rig(rig_path).shape_names
    report = json.loads((tmp_path / "out" / "tuned_report.json").read_text())
    assert {"train", "holdout"} <= set(report["summary"])
    assert report["run"]["complete"] and report["run"]["command"][:2] == ["facecap", "tune-rig"]
    assert report["run"]["config"]["tracker"] == "ls" and report["run"]["versions"]["numpy"] == np.__version__
    from facecap.config import load_config
    from facecap.tune import TuneConfig
    assert load_config(TuneConfig, tmp_path / "out" / "tuned_config.yaml").tracker == "ls"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tuned.npz", "tuned_config.yaml",
                                                                   "tuned_report.json"]


def test_tune_rig_bad_expressions(tmp_path, ict_face_rig, capsys):
    rig_path = tmp_path / "rig.npz"
    save_rig(ict_face_rig.subset(np.arange(0, ict_face_rig.num_vertices, 64)), rig_path)
    assert main(["tune-rig", "--rig", str(rig_path), "--expressions", str(tmp_path / "no.npz"),
                 "--out", str(tmp_path / "t.npz")]) == 2
    assert "not found" in capsys.readouterr().err
