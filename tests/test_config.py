"""The config scheme: defaults, YAML files, overrides and the errors that name the key."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from facecap.config import config_to_dict, describe_config, field, load_config, parse_overrides, save_config
from facecap.errors import ConfigError


@dataclass
class Inner:
    lam: float = field(0.1, "sparsity weight")
    steps: list[int] = field([10, 20], "schedule")


@dataclass
class Outer:
    name: str = field("take", "a name")
    mode: Literal["fast", "full"] = field("full", "quality preset")
    device: str | None = field(None, "torch device")
    out: Path = field(Path("out"), "output folder")
    inner: Inner = field(Inner(), "solver section")


def test_defaults_and_round_trip(tmp_path):
    cfg = load_config(Outer)
    assert cfg == Outer()
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Outer, tmp_path / "c.yaml") == cfg


def test_yaml_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("mode: fast\ninner:\n  lam: 2\n")
    cfg = load_config(Outer, tmp_path / "c.yaml", ["inner.steps=[1, 2, 3]", "device=cuda"])
    assert cfg.mode == "fast" and cfg.inner.lam == 2.0 and isinstance(cfg.inner.lam, float)
    assert cfg.inner.steps == [1, 2, 3] and cfg.device == "cuda" and cfg.inner == Inner(2.0, [1, 2, 3])


def test_exponent_without_dot_is_a_float():
    assert load_config(Outer, None, ["inner.lam=1e-8"]).inner.lam == 1e-8


def test_mutable_defaults_are_not_shared():
    a, b = Outer(), Outer()
    a.inner.steps.append(99)
    assert b.inner.steps == [10, 20]


def test_nested_section_defaults_stay_dataclasses():
    @dataclass
    class Top:
        outer: Outer = field(Outer(), "a section holding a section")

    assert isinstance(Top().outer.inner, Inner)


@pytest.mark.parametrize("overrides, match", [
    (["inner.lamda=1"], r"unknown config key 'inner\.lamda'"),
    (["bogus=1"], r"unknown config key 'bogus'"),
    (["inner.lam=abc"], r"'inner\.lam': expected float"),
    (["mode=slow"], r"'mode': expected one of 'fast', 'full'"),
    (["inner.steps=[1, x]"], r"'inner\.steps\[1\]': expected int"),
    (["inner.lam=true"], r"'inner\.lam': expected float"),
    (["inner=3"], r"'inner': expected a section"),
    (["novalue"], r"must look like key=value"),
    (["inner.lam=.nan"], r"'inner\.lam': expected a finite number, got nan"),
    (["inner.lam=nan"], r"'inner\.lam': expected a finite number, got 'nan'"),
    (["inner.lam=.inf"], r"'inner\.lam': expected a finite number, got inf"),
    (["inner.lam=-.inf"], r"'inner\.lam': expected a finite number, got -inf"),
    (["inner.lam=1e999"], r"'inner\.lam': expected a finite number, got '1e999'"),
])
def test_bad_overrides_name_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(Outer, None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Outer, tmp_path / "list.yaml")
    (tmp_path / "nan.yaml").write_text("inner:\n  lam: .nan\n")
    with pytest.raises(ConfigError, match=r"nan\.yaml: config key 'inner\.lam': expected a finite number"):
        load_config(Outer, tmp_path / "nan.yaml")
    (tmp_path / "bytes.yaml").write_bytes(b"\xff\xfe: 1\n")
    with pytest.raises(ConfigError, match=r"bytes\.yaml is not valid YAML"):
        load_config(Outer, tmp_path / "bytes.yaml")
    with pytest.raises(ConfigError, match="config file .* cannot be read"):
        load_config(Outer, tmp_path)
    (tmp_path / "typo.yaml").write_text("inner:\n  lamb: 1\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown config key 'inner\.lamb'"):
        load_config(Outer, tmp_path / "typo.yaml")


def test_describe_lists_every_key_with_help():
    lines = describe_config(Outer)
    assert any(line.startswith("inner.lam (float, default 0.1): sparsity weight") for line in lines)
    assert any(line.startswith("mode ('fast' | 'full', default 'full')") for line in lines)
    assert len(lines) == 6


def test_describe_shows_the_commands_own_section_defaults():
    @dataclass
    class Command:
        inner: Inner = field(Inner(lam=5.0), "tuned section")

    assert "inner.lam (float, default 5.0)" in describe_config(Command)[0]


def test_parse_overrides_nests_and_parses_yaml_values():
    assert parse_overrides(["a.b=1", "a.c=x", "d=[1, 2]"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2]}
    assert config_to_dict(Outer())["out"] == "out"


def test_describe_puts_expert_keys_apart():
    """Expert keys and every key of an expert section are listed apart from the common ones, none twice."""
    @dataclass
    class Tuning:
        a: float = field(1.0, "a")
        b: float = field(2.0, "b", expert=True)

    @dataclass
    class Command:
        out: str = field("x", "where")
        depth: int = field(3, "how deep", expert=True)
        tuning: Tuning = field(Tuning(), "common section")
        solver: Tuning = field(Tuning(), "expert section", expert=True)

    def names(lines):
        return [line.split(" ")[0] for line in lines]
    assert names(describe_config(Command, expert=False)) == ["out", "tuning.a"]
    assert names(describe_config(Command, expert=True)) == ["depth", "tuning.b", "solver.a", "solver.b"]
    assert sorted(names(describe_config(Command))) == sorted(names(describe_config(Command, expert=False))
                                                            + names(describe_config(Command, expert=True)))
