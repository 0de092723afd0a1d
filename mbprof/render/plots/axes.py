"""The columns that can be plotted, their names, units and which way is better.

An axis is a frame column: ``AXES`` holds every one by column name, ``ALIASES`` the short
names the CLI also takes. Bytes are shown in KB, or in MB from ``BYTES_MB_FROM`` up; the
other units are fixed per axis. The frontier rule lives here too: a Pareto frontier is
drawn when one axis is accuracy-like (``quality``), a least-squares fit otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mbprof.core.errors import MbprofError

if TYPE_CHECKING:
    import pandas as pd

BYTES_MB_FROM = 10_000_000  # byte axes switch from KB to MB above this


@dataclass(frozen=True)
class Axis:
    """A column that can be plotted: its name, unit, scale and which way is better."""

    column: str
    name: str
    unit: str
    scale: float = 1.0
    lower_is_better: bool = True
    quality: bool = False  # accuracy-like: a Pareto frontier is drawn against it
    context: tuple[str, ...] = field(default=())  # frame columns that qualify the unit


AXES: dict[str, Axis] = {
    a.column: a
    for a in (
        Axis("madds", "MAdds", "millions, batch 1", 1e-6),
        Axis("params", "Parameters", "millions", 1e-6),
        Axis("peak_act_bytes", "Peak activation memory", "bytes", context=("mem_dtype",)),
        Axis(
            "peak_act_bytes_efficient",
            "Peak activation memory, memory-efficient blocks",
            "bytes",
            context=("mem_dtype",),
        ),
        Axis("max_tensor_bytes", "Largest activation tensor", "bytes", context=("mem_dtype",)),
        Axis(
            "latency_ms",
            "Latency",
            "ms per batch",
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis(
            "latency_ms_per_image",
            "Latency per image",
            "ms",
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis(
            "throughput_ips",
            "Throughput",
            "images/s",
            lower_is_better=False,
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis("top1", "ImageNet top-1", "%", lower_is_better=False, quality=True),
        Axis("top5", "ImageNet top-5", "%", lower_is_better=False, quality=True),
        Axis("phone_latency_ms", "Published phone latency", "ms"),
    )
}
ALIASES = {
    "memory": "peak_act_bytes",
    "latency": "latency_ms",
    "throughput": "throughput_ips",
    "accuracy": "top1",
}


def resolve_axis(name: str, option: str) -> Axis:
    """The axis named ``name`` (a column or an alias); unknown names are refused."""
    key = ALIASES.get(name.strip().lower(), name.strip())
    if key not in AXES:
        names = ", ".join([*AXES, *ALIASES])
        raise MbprofError(f"{option}: unknown axis {name!r}; choose one of {names}")
    return AXES[key]


def has_frontier(x: Axis, y: Axis) -> bool:
    """True when ``y`` against ``x`` gets a Pareto frontier (one axis is accuracy-like);
    False when it gets a least-squares fit instead."""
    return x.quality or y.quality


def available_axes(frame: pd.DataFrame) -> list[str]:
    """The plottable columns of ``frame`` that hold at least one number."""
    return [key for key in AXES if key in frame.columns and frame[key].notna().any()]


def axis_scale(axis: Axis, values: pd.Series) -> tuple[float, str]:
    """The factor to multiply raw values by, and the unit shown on the axis."""
    if axis.unit == "bytes":
        return (1e-6, "MB") if values.max() >= BYTES_MB_FROM else (1e-3, "KB")
    return axis.scale, axis.unit


def axis_label(axis: Axis, frame: pd.DataFrame, values: pd.Series, log: bool = False) -> str:
    """'MAdds (millions, batch 1)'; a logarithmic axis says so: '(..., log scale)'."""
    _, unit = axis_scale(axis, values)
    context = _context_text(frame, axis.context)
    scale = ", log scale" if log else ""
    return f"{axis.name} ({unit}{', ' + context if context else ''}{scale})"


def _context_text(frame: pd.DataFrame, columns: tuple[str, ...]) -> str:
    parts = []
    for key in columns:
        if key not in frame.columns:
            continue
        values = frame[key].dropna().unique()
        if len(values) != 1:
            continue
        value = values[0]
        if key == "batch":
            parts.append(f"batch {int(value)}")
        elif key == "threads":
            parts.append(f"{int(value)} thread{'s' if int(value) != 1 else ''}")
        else:
            parts.append(str(value))
    return ", ".join(parts)
