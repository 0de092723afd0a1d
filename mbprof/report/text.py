"""How the report writes a count in its tables and prose: millions with an ``M``, kilobytes
with a ``K`` (K = 1000 bytes, the paper's unit), a difference from the paper's figure.
The number formats themselves are ``mbprof.core.units.format_value``."""

from __future__ import annotations

import math

from mbprof.core.units import format_multiplier, format_value

# A top-1 figure as accuracy tables print it: 72 -> '72.0', 72.95 -> '72.95'.
top1_text = format_multiplier


def millions(value: float) -> str:
    """3504872 -> '3.50M'."""
    return format_value(value, "millions") + "M"


def kilobytes(value: float) -> str:
    """401408 -> '401.4K'."""
    return format_value(value, "kb") + "K"


def delta(ours: float, paper: float, unit: str = "M") -> str:
    """mbprof's figure minus the paper's, and that in percent of the paper's: '+0.10M (+3.0%)'."""
    diff = ours - paper
    pct = 100.0 * diff / paper if paper else math.nan
    return f"{diff:+.2f}{unit} ({pct:+.1f}%)"
