"""Text for one value of a given kind (the kinds are listed in mbprof.frame.columns)."""

from __future__ import annotations

from typing import Any

from mbprof.core.units import format_bytes
from mbprof.frame.columns import column
from mbprof.frame.rows import is_missing

MISSING = "-"


def format_multiplier(value: float) -> str:
    """1 -> '1.0', 0.35 -> '0.35' (as the papers write widths)."""
    text = f"{value:g}"
    return text if any(c in text for c in ".en") else f"{text}.0"


def format_value(value: Any, kind: str) -> str:
    if is_missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if kind == "text":
        return str(value)
    if kind == "float":
        return format_multiplier(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "millions":
        return f"{value / 1e6:,.2f}"
    if kind == "bytes":
        return format_bytes(value)
    if kind == "kb":  # a column in one fixed unit, so that rows compare at a glance
        return f"{value / 1000:,.1f}"
    if kind == "ms":
        return f"{value:,.2f}"
    if kind == "delta":  # a difference, signed
        return f"{value:+,}" if isinstance(value, int) else f"{value:+,.3f}"
    if kind == "percent":
        return f"{value:.1f}%"
    if kind == "rate":
        return f"{value:,.1f}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return str(value)


def header_and_kind(key: str, headers: dict[str, str], kinds: dict[str, str]) -> tuple[str, str]:
    described = column(key)
    return headers.get(key, described.header), kinds.get(key, described.kind)
