"""The phone figure of ``reproduce``: each series' latency measured here, scaled by its
fitted factor, against the published phone latency (both axes logarithmic, ms), with the
line where they agree and a +-25% band around it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mbprof.render.plots.draw import save_figure

MARKERS = "osD^v<>P"
BAND = 0.25


def draw_phone(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``rows`` with ``series``, ``published_ms`` and ``predicted_ms`` (``phone.csv``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 6.0), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values = [v for r in rows for v in (r["published_ms"], r["predicted_ms"])] or [1.0, 10.0]
    low, high = min(values) / 1.3, max(values) * 1.3
    ax.fill_between(
        [low, high],
        [low * (1 - BAND), high * (1 - BAND)],
        [low * (1 + BAND), high * (1 + BAND)],
        color="0.92",
        label=f"within {BAND:.0%}",
    )
    ax.plot([low, high], [low, high], color="0.4", linewidth=1, label="measured x k = published")
    for i, series in enumerate(dict.fromkeys(r["series"] for r in rows)):
        mine = [r for r in rows if r["series"] == series]
        ax.scatter(
            [r["published_ms"] for r in mine],
            [r["predicted_ms"] for r in mine],
            s=22,
            marker=MARKERS[i % len(MARKERS)],
            alpha=0.8,
            label=series,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("Published phone latency (ms, Pixel 1, TF-Lite, float, one core)")
    ax.set_ylabel("Measured here x fitted scale k (ms)")
    ax.set_title("Phone latency predicted from this machine, one thread")
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)
