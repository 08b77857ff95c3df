"""Every configs/*.yaml loads into its command's config class and equals the defaults it mirrors."""

from pathlib import Path

import pytest

from facecap.config import config_to_dict, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _classes():
    from facecap.demo import DemoConfig
    from facecap.export.config import ExportConfig
    from facecap.fit.config import FitConfig
    from facecap.solve.sequence import SolveConfig
    from facecap.synth.take import SynthConfig
    found = {"fit": FitConfig, "demo": DemoConfig, "solve": SolveConfig, "synth": SynthConfig, "export": ExportConfig}
    for module, name, key in [("facecap.calibrate.config", "CalibrateConfig", "calibrate"),
                              ("facecap.tune.api", "TuneConfig", "tune_rig")]:
        try:
            found[key] = getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):
            continue
    return found


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_file_matches_defaults(path):
    classes = _classes()
    if path.stem not in classes:
        pytest.fail(f"{path.name} has no config class registered in this test")
    cls = classes[path.stem]
    assert config_to_dict(load_config(cls, path)) == config_to_dict(cls())
