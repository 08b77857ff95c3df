"""Name maps: the rig's shape names as another rig or app calls them (ARKit, MetaHuman curves, a studio rig).

A name map is a YAML file of ``rig name: target name`` pairs::

    browInnerUp_L: BrowInnerUp      # several rig shapes may share a target: the target is their mean
    browInnerUp_R: BrowInnerUp
    jawOpen: CTRL_expressions_jawOpen
    tongueOut: null                 # null leaves the shape out

Rig shapes the map does not list keep their own names. Keys that are no rig shape are ignored with a
warning (one map may serve several rigs).
"""

import logging
from pathlib import Path

import numpy as np
import yaml

from facecap.animation import Animation
from facecap.errors import FormatError

__all__ = ["NameMap", "load_name_map", "target_names", "renamed"]

log = logging.getLogger(__name__)

NameMap = dict[str, str | None]


def load_name_map(path: str | Path) -> NameMap:
    """Read a name map file; FormatError names the file and the bad entry."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"name map not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise FormatError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: a name map is a mapping of rig names to target names, got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str)) or value == "":
            raise FormatError(f"{path}: entry {key!r}: {value!r} must map a rig name to a target name or null")
    return data


def target_names(shape_names: tuple[str, ...], name_map: NameMap | None) -> list[str | None]:
    """Each rig shape's target name (None: left out); warns about map keys that are no rig shape."""
    if not name_map:
        return list(shape_names)
    unknown = sorted(set(name_map) - set(shape_names))
    if unknown:
        log.warning("name map: %d names are no shape of this rig, ignored: %s", len(unknown), ", ".join(unknown))
    return [name_map.get(name, name) for name in shape_names]


def renamed(anim: Animation, name_map: NameMap | None) -> Animation:
    """``anim`` with its shapes under their target names; a target of several shapes is their mean."""
    if not name_map:
        return anim
    targets = target_names(anim.shape_names, name_map)
    order = list(dict.fromkeys(name for name in targets if name is not None))
    index = {name: j for j, name in enumerate(order)}
    counts = np.zeros((anim.num_shapes, len(order)))                # rig shape -> target mixing matrix
    for k, name in enumerate(targets):
        if name is not None:
            counts[k, index[name]] = 1.0
    mixing = counts / np.maximum(counts.sum(0), 1.0)
    return Animation(shape_names=tuple(order), weights=anim.weights @ mixing, R=anim.R, t=anim.t, fps=anim.fps,
                     units=anim.units, frames=anim.frames, start_timecode=anim.start_timecode, extra=anim.extra)
