"""Length units of rigs, calibrations and animations (docs/formats.md: "mm", "cm" or "m")."""

from facecap.errors import FormatError

__all__ = ["UNITS_IN_MM", "unit_scale"]

UNITS_IN_MM: dict[str, float] = {"mm": 1.0, "cm": 10.0, "m": 1000.0}


def unit_scale(src: str, dst: str) -> float:
    """Factor that converts a length in ``src`` units to ``dst`` units (``unit_scale("cm", "mm") == 10``)."""
    for unit in (src, dst):
        if unit not in UNITS_IN_MM:
            raise FormatError(f"unknown length unit {unit!r}; expected one of {', '.join(UNITS_IN_MM)}")
    return UNITS_IN_MM[src] / UNITS_IN_MM[dst]
