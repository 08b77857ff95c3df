"""facecap export: a finished fit's delivery files again, with the fitted identity, without refitting."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facecap.animation import Animation, save_animation_json
from facecap.cli import main
from facecap.export import read_fbx_csv
from facecap.export.gltf import read_glb
from facecap.fit.appearance import photometric_samples
from facecap.fit.config import FitConfig
from facecap.fit.neutral import with_neutral_correction
from facecap.rig import save_rig
from tests.export.test_gltf import _accessor
from tests.rig.rig_factory import tiny_rig


def _fit_folder(tmp_path, rig, identity, neutral_degree=2):
    """animation.json (world: an OpenCV camera's) and report.json as facecap fit leaves them, and the rig's npz."""
    rng = np.random.default_rng(5)
    T = 8
    R = Rotation.from_euler("xyz", [180, 0, 0], degrees=True).as_matrix() @ \
        Rotation.from_rotvec(rng.normal(scale=0.05, size=(T, 3))).as_matrix()
    anim = Animation(rig.shape_names, rng.uniform(size=(T, rig.num_shapes)), R, rng.normal(size=(T, 3)) + [0, 0, 600],
                     fps=24.0, units="mm", start_timecode="10:00:00:00")
    fit = tmp_path / "fit"
    save_animation_json(anim, fit / "animation.json")
    config = {"neutral_degree": neutral_degree, "exclude_materials": []}
    (fit / "report.json").write_text(json.dumps({"identity": list(identity), "config": config, "frames": []}))
    save_rig(rig, tmp_path / "rig.npz")
    return anim, fit


def _glb_positions(path):
    document, binary = read_glb(path)
    return _accessor(document, binary, document["meshes"][0]["primitives"][0]["attributes"]["POSITION"])


def test_exports_with_the_fitted_identity(tmp_path, rng):
    rig = tiny_rig(rng)
    identity = [0.7, -0.4]
    anim, fit = _fit_folder(tmp_path, rig, identity)
    out = tmp_path / "out"
    assert main(["export", str(fit / "animation.json"), "--rig", str(tmp_path / "rig.npz"), "--out", str(out),
                 "--formats", "csv,livelink,glb"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "animation.csv", "animation.glb", "config.yaml", "livelink.csv", "meshes_head.npz", "run.json", "weights.png"]
    performer = rig.neutral + np.einsum("i,ivc->vc", identity, rig.identity_deltas)
    np.testing.assert_allclose(_glb_positions(out / "animation.glb"), performer / 100, atol=1e-6)   # cm -> m
    angles = Rotation.from_matrix(read_fbx_csv(out / "animation.csv").R).magnitude()
    assert np.degrees(angles).max() < 10                               # the performer frame, not the camera's 180°
    assert main(["export", str(fit / "animation.json"), "--out", str(tmp_path / "world"), "--formats", "csv",
                 "--set", "head_frame=world"]) == 0
    np.testing.assert_allclose(read_fbx_csv(tmp_path / "world" / "animation.csv").R, anim.R, atol=1e-7)


def test_a_rig_without_identity_modes_gets_the_fits_neutral_correction(tmp_path, rng):
    rig = tiny_rig(rng, extras=False)
    modes = with_neutral_correction(rig.in_units("mm"), photometric_samples(rig, []), 1).identity_deltas
    identity = np.linspace(-1, 1, len(modes))
    _, fit = _fit_folder(tmp_path, rig, identity, neutral_degree=1)
    out = tmp_path / "out"
    assert main(["export", str(fit / "animation.json"), "--rig", str(tmp_path / "rig.npz"), "--out", str(out),
                 "--formats", "glb", "--set", "meshes=none"]) == 0
    performer = rig.in_units("mm").neutral + np.einsum("i,ivc->vc", identity, modes)
    np.testing.assert_allclose(_glb_positions(out / "animation.glb"), performer / 1000, atol=1e-6)   # mm -> m
    assert FitConfig().neutral_degree != 1                              # so the report's degree was the one used


def test_errors_are_clean(tmp_path, rng, capsys):
    rig = tiny_rig(rng)
    _, fit = _fit_folder(tmp_path, rig, [0.1, 0.2])
    assert main(["export", str(fit / "animation.json"), "--out", str(tmp_path / "o"), "--formats", "glb"]) == 2
    assert "glb and fbx need the rig" in capsys.readouterr().err
    assert main(["export", str(fit / "animation.json"), "--out", str(tmp_path / "o"), "--formats", "csv,usd"]) == 2
    assert "unknown export format 'usd'" in capsys.readouterr().err
    assert main(["export", str(fit / "animation.json"), "--rig", str(tmp_path / "rig.npz"), "--out",
                 str(tmp_path / "o"), "--report", str(tmp_path / "none.json")]) == 2
    assert "report not found" in capsys.readouterr().err


def test_help_lists_the_keys(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    assert "head_frame" in text and "eyes.out_deg" in text and "--formats" in text and "-o OUT, --out OUT" in text
