"""An impossible ``facecap fit`` config is an error when it is loaded, naming the key, before any work."""

import pytest

from facecap.cli import main
from facecap.config import load_config
from facecap.errors import ConfigError
from facecap.fit.config import FitConfig


@pytest.mark.parametrize("override, match", [
    ("schedule.scales=[0.5, 1.0]", r"section 'schedule': scales and iterations must have the same length, got 2 "
                                   r"and 3"),
    ("schedule.keyframe_scales=[0, 0.25, 0.5, 1]", r"section 'schedule': keyframe_scales must lie in \(0, 1\]"),
    ("schedule.iterations=[6, -1, 8]", r"section 'schedule': iterations must be >= 0"),
    ("schedule.passes=-1", r"section 'schedule': passes must be >= 0, got -1"),
    ("loss.l1=-0.001", r"section 'loss': l1 must be >= 0, got -0.001"),
    ("loss.photometric_eps=0", r"section 'loss': photometric_eps must be > 0"),
    ("loss.relaxed_max_cosine=0", r"section 'loss': relaxed_max_cosine must lie in \(0, 1\], got 0"),
    ("reader_threads=-1", r"reader_threads must be >= 0, got -1"),
    ("batch_frames=0", r"batch_frames must be >= 1, got 0"),
    ("qa_scale=1.5", r"qa_scale must lie in \(0, 1\], got 1.5"),
    ("sampler=pixels", r"sampler must be one of vertex, raster, got 'pixels'"),
    ("sample_spacing_px=0", r"sample_spacing_px must be > 0, got 0"),
    ("raster_scale=0", r"raster_scale must lie in \(0, 1\], got 0"),
    ("device=gpu", r"device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("init.lambda_smooth=-2", r"section 'init': lambda_smooth must be >= 0, got -2"),
])
def test_an_impossible_setting_names_its_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(FitConfig, None, [override])


def test_a_file_and_the_overrides_are_checked_together(tmp_path):
    path = tmp_path / "fit.yaml"
    path.write_text("schedule:\n  scales: [0.5, 1.0]\n")
    config = load_config(FitConfig, path, ["schedule.iterations=[4, 8]"])
    assert config.schedule.sweep_stages == [(0.5, 4), (1.0, 8)]
    with pytest.raises(ConfigError, match=r"fit\.yaml: config section 'schedule': scales and iterations"):
        load_config(FitConfig, path)


def test_the_cli_stops_at_the_config_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["fit", str(tmp_path / "take"), "--rig", str(tmp_path / "rig.npz"), "--out", str(out),
                 "--set", "reader_threads=-1"])
    assert code == 2
    assert "reader_threads must be >= 0" in capsys.readouterr().err
    assert not out.exists()
