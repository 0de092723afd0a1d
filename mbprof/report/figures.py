"""The report's figures (``plan.FIGURES``, drawn as ``mbprof plot`` draws them) and
``pareto.md``: each figure with its frontier, or how well one axis predicts the other."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.core.units import format_value
from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult
from mbprof.report.plan import FIGURES, MARKER, config, find_row

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.render.plots import Axis, PlotResult


def _axis_text(axis: Axis, value: float) -> str:
    """A frontier table's cell, in the unit of its header."""
    if axis.column == "madds":
        return f"{value / 1e6:.1f}"
    if axis.column == "params":
        return format_value(value, "millions")
    if axis.unit == "bytes":
        return format_value(value, "kb")
    return format_value(value, "float") if axis.quality else f"{value:.2f}"


def _frontier_text(plotted: PlotResult, data: pd.DataFrame, x: Axis, y: Axis) -> list[str]:
    from mbprof.render.plots import axis_label

    front, points = plotted.frontier, plotted.points
    rows = [
        [r["label"], r["model"], _axis_text(x, r[x.column]), _axis_text(y, r[y.column])]
        for r in front.to_dict(orient="records")
    ]
    return [
        f"On the frontier: {len(front)} of {len(points)} configurations (no other "
        f"configuration has {x.name} at least as {'low' if x.lower_is_better else 'high'}"
        " and top-1 at least as high, one of them strictly).",
        "",
        markdown_grid(
            ["Point", "Model", axis_label(x, data, points[x.column]), f"{y.name} (%)"],
            rows,
            [False, False, True, True],
        ),
        "",
    ]


def _fit_text(plotted: PlotResult, data: pd.DataFrame, y: Axis) -> list[str]:
    if plotted.fit is None or math.isnan(plotted.fit[0]):
        return []
    r, rho = plotted.fit
    text = (
        f"Over {len(plotted.points)} configurations: Pearson r = {r:.3f}, Spearman rank "
        f"correlation = {rho:.3f}."
    )
    v1 = find_row(data, config("mobilenet_v1", 1.0, 224))
    v2 = find_row(data, config("mobilenet_v2", 1.0, 224))
    if v1 is not None and v2 is not None and y.column in v1 and y.column in v2:
        text += (
            f" MAdds alone do not set the latency: MobileNetV1 1.0@224 "
            f"({v1['madds'] / 1e6:.0f}M MAdds) took {v1[y.column]:.1f} ms here and "
            f"MobileNetV2 1.0@224 ({v2['madds'] / 1e6:.0f}M) {v2[y.column]:.1f} ms."
        )
    return [text, ""]


def write_figures(frame: pd.DataFrame, root: Path, result: ReproduceResult) -> str:
    """Draw each figure the sweep ``frame`` has the columns for; returns ``pareto.md``."""
    from mbprof.render.plots import AXES, available_axes, plot_frame

    have = set(available_axes(frame))
    sections = [MARKER, "# Pareto frontiers", ""]
    for spec in FIGURES:
        if not {spec.x, spec.y} <= have:
            missing = ", ".join(sorted({spec.x, spec.y} - have))
            result.left_out.append(f"figures/{spec.stem}.png: the sweep has no {missing}")
            continue
        x, y = AXES[spec.x], AXES[spec.y]
        data = frame[frame["resolution"].astype(str) == "224"] if spec.only_224 else frame
        relative = f"figures/{spec.stem}.png"
        (root / "figures").mkdir(exist_ok=True)
        options = {"log_x": spec.log_x, "log_y": spec.log_y, "title": spec.title}
        plotted = plot_frame(data, x, y, root / relative, **options, where="the sweep")
        result.files.append((relative, spec.title))
        sections += [f"## {spec.title}", "", f"![{spec.title}]({relative})", ""]
        if plotted.kind == "pareto":
            sections += _frontier_text(plotted, data, x, y)
        else:
            sections += _fit_text(plotted, data, y)
    return "\n".join(sections)
