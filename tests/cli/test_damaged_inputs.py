"""Every damaged input ends in a clear error (exit 2, naming the file or key) or a correct run: the cases of
facecap.testing.damaged_inputs, each on its own copy of one tiny synthetic take, through ``facecap`` in-process."""

import re

import numpy as np
import pytest

from facecap.animation import load_animation_json
from facecap.cli import main
from facecap.publish import PRIVATE_DIR, read_run
from facecap.testing.damaged_inputs import CASES, copy_take, make_tiny_take


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_take(tmp_path_factory.mktemp("tiny"))


def _marks(case):
    marks = [pytest.mark.xfail(strict=True, reason=f"waits for {case.pending}")] if case.pending else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_marks(c) for c in CASES])
def test_damaged_input(case, tiny, tmp_path, capsys):
    copy = copy_take(tiny, tmp_path / "copy")
    args = case.run(copy)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if case.error is not None:
        assert code == 2, err
        assert re.search(case.error, err), f"{err!r} does not match {case.error!r}"
        assert not list(copy.root.rglob(f"{PRIVATE_DIR}/staging-*")), "a failed run left its staging folder"
        return
    assert code == 0, err
    if args[1] == "fit":
        anim = load_animation_json(copy.out / "animation.json")
        assert anim.num_frames == 4 and np.isfinite(anim.weights).all() and np.isfinite(anim.t).all()
        assert 0 <= anim.weights.min() and anim.weights.max() <= 1
        assert read_run(copy.out)["complete"] is True
    if case.check is not None:
        case.check(copy)
