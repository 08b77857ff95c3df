"""One config scheme for every command: dataclasses with defaults, YAML files, key overrides.

A command's settings are a (possibly nested) dataclass. Each field carries its help text in
``metadata["help"]`` so that ``facecap <command> --help`` can list every key. Values come from,
in order: the dataclass defaults, a YAML file (``--config FILE``), then ``--set key=value``
overrides (dotted keys reach nested sections). YAML is read with ``yaml.safe_load`` only; an
unknown key or a value of the wrong type is a :class:`ConfigError` that names the key.
"""

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from facecap.errors import ConfigError

__all__ = ["field", "require_non_negative", "load_config", "config_to_dict", "save_config", "ConfigKey",
           "config_keys", "describe_config", "parse_overrides"]

C = TypeVar("C")


def field(default: Any, help: str, expert: bool = False, **kwargs: Any) -> Any:
    """A dataclass field with help text; mutable defaults (lists, dataclasses) are copied.

    ``expert`` keys are listed after the common ones in ``--help``: tuning that most users never change.
    A section (a dataclass-valued field) marked expert makes all its keys expert.
    """
    metadata = {"help": help, "expert": expert}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def require_non_negative(config: Any, names: list[str]) -> None:
    """A config's ``__post_init__`` check: each named field is >= 0, else a ConfigError naming it."""
    for name in names:
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)}")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless (int to float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}': expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a section (mapping), got {value!r}")
        return _build(tp, value, prefix=f"{key}.")
    if tp is Any:
        return value
    if tp is float:
        return _finite_float(value, key)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected {tp.__name__}, got {value!r}")
    if not isinstance(value, tp):
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    return value


def _finite_float(value: Any, key: str) -> float:
    """A float key's value: an int or float, or a string holding a float literal (YAML 1.1, which PyYAML reads,
    takes "1e-8" without a dot for a string); NaN and infinity are errors, since no key means them."""
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(f"config key '{key}': expected float, got {value!r}")
    if not math.isfinite(number):
        raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
    return number


def _build(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys here: {', '.join(prefix + k for k in fields)}")
    values = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config section '{prefix.rstrip('.') or cls.__name__}': {err}") from err


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain data (for YAML or JSON) of a config dataclass; paths become strings."""
    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(config))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ``["solver.lambda_l1=0.1", "device=cuda"]`` into a nested dict; values parse as YAML."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' must look like key=value (e.g. solver.lambda_l1=0.1)")
        node = tree
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{item}': value is not valid YAML ({err})") from err
    return tree


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Build ``cls`` from its defaults, then a YAML file, then ``key=value`` overrides.

    The result is checked as a whole (an override may complete what the file changed), and an
    error that the file makes on its own names the file.
    """
    loaded = {} if path is None else _read_yaml(Path(path))
    data = _merge(config_to_dict(cls()), loaded)
    if overrides:
        data = _merge(data, parse_overrides(overrides))
    try:
        return _build(cls, data)
    except ConfigError:
        try:
            _build(cls, loaded)
        except ConfigError as file_err:
            raise ConfigError(f"{path}: {file_err}") from file_err
        raise


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_bytes().decode()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read ({err.strerror})") from err
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, got {type(loaded).__name__}")
    return loaded


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, so every output folder records how it was made."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


@dataclasses.dataclass(frozen=True)
class ConfigKey:
    """One key of a config: its dotted name, type, default, help text and whether it is expert tuning."""

    name: str
    type: Any
    default: Any
    help: str
    expert: bool


def config_keys(cls: type, defaults: Any = None, expert: bool | None = None, prefix: str = "") -> list[ConfigKey]:
    """Every key of the config ``cls``, nested sections flattened with dots, in declaration order.

    A section's defaults are the parent's (``defaults``), which may differ from its class's own.
    ``expert``: only the expert keys (True), only the common ones (False), or all (None); a section
    marked expert makes all its keys expert.
    """
    keys = []
    hints = typing.get_type_hints(cls)
    defaults = cls() if defaults is None else defaults
    for f in dataclasses.fields(cls):
        tp, value, is_expert = hints[f.name], getattr(defaults, f.name), f.metadata.get("expert", False)
        if dataclasses.is_dataclass(tp):
            if not (is_expert and expert is False):
                keys += config_keys(tp, value, None if is_expert and expert else expert, f"{prefix}{f.name}.")
        elif expert is None or is_expert == expert:
            keys.append(ConfigKey(prefix + f.name, tp, value, f.metadata.get("help", ""), is_expert))
    return keys


def describe_config(cls: type, expert: bool | None = None) -> list[str]:
    """One line per key of :func:`config_keys`: ``name (type, default): help``."""
    return [f"{k.name} ({_type_name(k.type)}, default {k.default!r}): {k.help}"
            for k in config_keys(cls, expert=expert)]
