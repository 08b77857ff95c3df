"""Name maps: rename, merge by mean, drop; malformed files are clear errors."""

import numpy as np
import pytest

from facecap.animation import Animation
from facecap.errors import FormatError
from facecap.export.names import load_name_map, renamed, target_names


def test_renamed_merges_and_drops(tmp_path, rng, caplog):
    (tmp_path / "m.yaml").write_text("browInnerUp_L: BrowInnerUp\nbrowInnerUp_R: BrowInnerUp\ntongueOut: null\n"
                                     "cheekPuff: CheekPuff\n")
    name_map = load_name_map(tmp_path / "m.yaml")
    names = ("jawOpen", "browInnerUp_L", "tongueOut", "browInnerUp_R")
    weights = rng.uniform(size=(5, 4))
    anim = Animation(names, weights, np.broadcast_to(np.eye(3), (5, 3, 3)), np.zeros((5, 3)), fps=24)
    out = renamed(anim, name_map)
    assert out.shape_names == ("jawOpen", "BrowInnerUp")
    np.testing.assert_allclose(out.weights, np.stack([weights[:, 0], (weights[:, 1] + weights[:, 3]) / 2], 1))
    assert out.fps == 24 and out.R is anim.R
    assert "1 names are no shape of this rig, ignored: cheekPuff" in caplog.text
    assert target_names(names, None) == list(names) and renamed(anim, None) is anim


@pytest.mark.parametrize("text, match", [
    ("- a\n- b\n", "a mapping of rig names"),
    ("a: [b, c]\n", "entry 'a'"),
    ("a: ''\n", "entry 'a'"),
    ("a: b: c\n", "not valid YAML"),
])
def test_malformed_maps(tmp_path, text, match):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(FormatError, match=match):
        load_name_map(tmp_path / "bad.yaml")
    with pytest.raises(FormatError, match="not found"):
        load_name_map(tmp_path / "none.yaml")
