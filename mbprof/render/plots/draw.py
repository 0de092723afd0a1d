"""Drawing a figure of points and saving it byte for byte (matplotlib, Agg).

matplotlib is imported inside the functions that draw, and only the Agg-based
``Figure`` API is used (no pyplot state, no display needed). A log axis has major ticks
at 1, 2, 3 and 5 of each decade (every digit on a short span), written plainly (``200``, not ``2x10^2``). The frontier is
a line through the frontier points, each ringed; a fit plot gets a dashed least-squares
line (on the linear values) instead. Saved figures carry no dates or versions, so the
same input gives the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.render.plots.axes import Axis, axis_label, axis_scale, has_frontier
from mbprof.render.plots.labels import label_order, place_labels
from mbprof.render.plots.styles import legend_names, model_styles

if TYPE_CHECKING:
    import pandas as pd


def draw_figure(
    frame: pd.DataFrame,
    points: pd.DataFrame,
    x: Axis,
    y: Axis,
    *,
    log_x: bool = False,
    log_y: bool = False,
    title: str | None = None,
    pareto: bool = True,
    fit: tuple[float, float] | None = None,
):
    """The figure of ``points`` (from ``plot_points``), not yet saved."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    x_factor, _ = axis_scale(x, points[x.column])
    y_factor, _ = axis_scale(y, points[y.column])
    xs = (points[x.column].astype(float) * x_factor).tolist()
    ys = (points[y.column].astype(float) * y_factor).tolist()

    # More room for many points: the labels keep their size, the plot grows.
    size = (8.0, 5.6) if len(points) <= 30 else (10.0, 7.0)
    fig = Figure(figsize=size, dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = model_styles(points)
    for model, (colour, marker, name) in styles.items():
        rows = points.index[points["model"] == model]
        ax.scatter(
            [xs[i] for i in rows],
            [ys[i] for i in rows],
            s=34,
            color=colour,
            marker=marker,
            edgecolors="white",
            linewidths=0.6,
            label=name,
            zorder=3,
        )
    line_xy = None
    if pareto:
        front = [i for i in range(len(points)) if points["on_frontier"].iloc[i]]
        front.sort(key=lambda i: (xs[i], ys[i]))
        fx, fy = [xs[i] for i in front], [ys[i] for i in front]
        ax.plot(fx, fy, "-", color="0.3", lw=1.1, zorder=2, label=f"Pareto frontier ({len(front)})")
        ax.scatter(fx, fy, s=95, facecolors="none", edgecolors="0.2", linewidths=0.9, zorder=4)
        line_xy = (fx, fy)
    elif fit is not None and not math.isnan(fit[0]) and len(set(xs)) > 1:
        slope, intercept = np.polyfit(xs, ys, 1)
        grid = np.linspace(min(xs), max(xs), 50)
        ax.plot(
            grid,
            slope * grid + intercept,
            "--",
            color="0.4",
            lw=1.0,
            zorder=2,
            label=f"least-squares fit (linear scale), r = {fit[0]:.2f}",
        )
        line_xy = (grid.tolist(), (slope * grid + intercept).tolist())

    for on, axis, scale in ((log_x, ax.xaxis, ax.set_xscale), (log_y, ax.yaxis, ax.set_yscale)):
        if on:
            scale("log")
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.margins(x=0.08, y=0.08)
    for on, axis, limits in ((log_x, ax.xaxis, ax.get_xlim), (log_y, ax.yaxis, ax.get_ylim)):
        if on:
            _log_ticks(axis, *limits())
    ax.grid(True, which="major", color="0.88", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    ax.set_xlabel(axis_label(x, frame, points[x.column], log=log_x), fontsize=10)
    ax.set_ylabel(axis_label(y, frame, points[y.column], log=log_y), fontsize=10)
    first, _, rest = x.name.partition(" ")
    x_name = (first.lower() if first[1:].islower() else first) + (f" {rest}" if rest else "")
    default_title = f"{y.name} against {x_name}"
    if pareto:
        default_title += " (Pareto frontier outlined)"
    ax.set_title(title or default_title, fontsize=12)
    ax.set_xlim(*ax.get_xlim())  # freeze the limits before labels are measured
    ax.set_ylim(*ax.get_ylim())
    fig.canvas.draw()  # lay out the axes so that label positions are measured in place

    order = label_order(ax, xs, ys, points["on_frontier"].tolist() if pareto else None)
    fontsize = 7.0 if len(points) > 12 else 8.0
    rings = points["on_frontier"].tolist() if pareto else [False] * len(points)
    colours = [styles[m][0] for m in points["model"]]
    labels = points["label"].tolist()
    if points["model"].nunique() > 1:  # two "1.0@224" points: say whose each is
        names = legend_names(points)
        labels = [f"{names[m]} {text}" for m, text in zip(points["model"], labels, strict=True)]
    place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize)
    ax.legend(loc="best", fontsize=8, framealpha=0.92, edgecolor="0.8")
    footnote = _footnote(points, x, y)
    if footnote:
        import textwrap

        lines = textwrap.wrap(footnote, width=int(150 * fig.get_figwidth() / 8.0))
        fig.text(0.01, 0.008, "\n".join(lines), fontsize=6.5, color="0.35", va="bottom")
        bottom = 0.012 + 0.022 * len(lines)
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


# Labelled ticks of a log axis at these multiples of each decade: 300M can be read off.
LOG_TICKS = (1.0, 2.0, 3.0, 5.0)


def _log_ticks(axis, low: float, high: float) -> None:
    """Major (labelled) ticks at 1, 2, 3 and 5 of each decade, minor ones at the other
    digits; on a span too short to hold three of those, every digit is labelled."""
    from matplotlib.ticker import LogLocator

    subs = LOG_TICKS
    within = [
        m * 10.0**e
        for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for m in subs
        if low <= m * 10.0**e <= high
    ]
    if len(within) < 3:
        subs = tuple(float(d) for d in range(1, 10))
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    rest = tuple(float(d) for d in range(1, 10) if d not in subs)
    axis.set_minor_locator(LogLocator(base=10, subs=rest or (1.0,)))


def _footnote(points: pd.DataFrame, x: Axis, y: Axis) -> str:
    parts = []
    if has_frontier(x, y) and "accuracy_source" in points.columns:
        sources = [s for s in points["accuracy_source"].dropna().unique() if str(s)]
        if sources:
            parts.append("Top-1 from: " + "; ".join(map(str, sources)) + ".")
    if "madds" in (x.column, y.column):
        parts.append("MAdds counted by mbprof (conv + FC multiply-accumulates, fvcore).")
    return " ".join(parts)


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` whole (PNG, SVG or PDF by the extension), without dates or versions so
    that the same figure gives the same bytes."""
    import io

    from mbprof.core.files import write_atomic

    buffer = io.BytesIO()
    fmt = path.suffix.lower().lstrip(".")
    fig.savefig(buffer, format=fmt, metadata=_metadata(fmt))
    write_atomic(path, buffer.getvalue())


def _metadata(fmt: str) -> dict[str, Any]:
    """No creation dates or version strings, so that a figure regenerates byte for byte."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    return {"CreationDate": None, "Creator": None, "Producer": None}
