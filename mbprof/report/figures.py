"""The report's figures (``plan.FIGURES``, drawn as ``mbprof plot`` draws them) and
``pareto.md``: each figure with its frontier, or how well one axis predicts the other."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.core.units import format_value
from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult
from mbprof.report.plan import FIGURES, config, find_row
from mbprof.report.text import fill

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


def _frontier_text(plotted: PlotResult, data: pd.DataFrame, x: Axis, y: Axis) -> str:
    from mbprof.render.plots import axis_label

    front, points = plotted.frontier, plotted.points
    rows = [
        [r["label"], r["model"], _axis_text(x, r[x.column]), _axis_text(y, r[y.column])]
        for r in front.to_dict(orient="records")
    ]
    headers = ["Point", "Model", axis_label(x, data, points[x.column]), f"{y.name} (%)"]
    table = markdown_grid(headers, rows, [False, False, True, True])
    direction = "low" if x.lower_is_better else "high"
    values = {"points": len(front), "total": len(points), "x": x.name, "direction": direction}
    return fill("pareto", "frontier", **values, table=table)


def _fit_text(plotted: PlotResult, data: pd.DataFrame, y: Axis) -> str | None:
    if plotted.fit is None or math.isnan(plotted.fit[0]):
        return None
    r, rho = plotted.fit
    latency = ""
    v1 = find_row(data, config("mobilenet_v1", 1.0, 224))
    v2 = find_row(data, config("mobilenet_v2", 1.0, 224))
    if v1 is not None and v2 is not None and y.column in v1 and y.column in v2:
        v1_madds, v2_madds = v1["madds"] / 1e6, v2["madds"] / 1e6
        values = {"v1_madds": v1_madds, "v1_ms": v1[y.column], "v2_ms": v2[y.column]}
        latency = fill("pareto", "latency", **values, v2_madds=v2_madds)
    return fill("pareto", "fit", points=len(plotted.points), r=r, rho=rho, latency=latency)


def write_figures(frame: pd.DataFrame, root: Path, result: ReproduceResult) -> str:
    """Draw each figure the sweep ``frame`` has the columns for; returns ``pareto.md``."""
    from mbprof.render.plots import AXES, available_axes, plot_frame

    have = set(available_axes(frame))
    sections = [fill("pareto", "head")]
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
        sections.append(fill("pareto", "figure", title=spec.title, path=relative))
        if plotted.kind == "pareto":
            sections.append(_frontier_text(plotted, data, x, y))
        elif (fit := _fit_text(plotted, data, y)) is not None:
            sections.append(fit)
    return "\n".join(sections)
