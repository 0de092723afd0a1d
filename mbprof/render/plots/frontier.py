"""A frame plotted and reported: ``plot_frame`` checks, draws and saves one figure and
returns what it shows (``PlotResult``); ``frontier_document`` is what ``mbprof plot``
prints of it (the frontier's configurations, or every point of a fit plot)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.core.errors import MbprofError
from mbprof.render.plots.axes import Axis, has_frontier
from mbprof.render.plots.checks import check_axes, check_figure_path, check_plot_values
from mbprof.render.plots.draw import draw_figure, save_figure
from mbprof.render.plots.points import correlation, plot_points

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class PlotResult:
    """What a figure shows: the points drawn, the frontier (or the fit), what was left out."""

    path: Path
    kind: str  # "pareto" or "fit"
    points: pd.DataFrame  # every configuration drawn, with label and on_frontier
    frontier: pd.DataFrame  # the frontier's rows in order of x (empty for "fit")
    omitted: int  # rows without both values (or marked with an error)
    notes: list[str] = field(default_factory=list)
    fit: tuple[float, float] | None = None  # a fit plot's Pearson r and Spearman rho


def _in_x_order(rows: pd.DataFrame, x: Axis, y: Axis) -> pd.DataFrame:
    return rows.sort_values([x.column, y.column]).reset_index(drop=True)


def plot_frame(
    frame: pd.DataFrame,
    x: Axis,
    y: Axis,
    path: str | Path,
    *,
    log_x: bool = False,
    log_y: bool = False,
    title: str | None = None,
    where: str = "the frame",
) -> PlotResult:
    """Draw ``y`` against ``x`` for every row of ``frame`` and write the figure to ``path``
    (PNG, SVG or PDF by its extension)."""
    check_axes(frame, {"--x": x, "--y": y}, where)
    frame = check_plot_values(frame, {"--x": x, "--y": y}, where)
    path = check_figure_path(path, "figure")
    points, omitted = plot_points(frame, x, y)
    if points.empty:
        raise MbprofError(f"no row of {where} has both {x.column} and {y.column}; nothing to plot")
    for on, option, axis in ((log_x, "--log-x", x), (log_y, "--log-y", y)):
        if on and (points[axis.column] <= 0).any():
            raise MbprofError(f"{option}: {axis.column} has values <= 0 in {where}; drop {option}")
    pareto = has_frontier(x, y)
    notes: list[str] = []
    if omitted:
        notes.append(
            f"{omitted} row{'s' if omitted != 1 else ''} of {where} "
            f"{'have' if omitted != 1 else 'has'} no {x.column} or {y.column} and "
            f"{'are' if omitted != 1 else 'is'} not drawn."
        )
    fit = None
    if not pareto:
        r, rho = correlation(points[x.column].tolist(), points[y.column].tolist())
        fit = (r, rho)
        if not math.isnan(r):
            notes.append(
                f"{y.column} against {x.column} over {len(points)} configurations: "
                f"Pearson r = {r:.3f}, Spearman rank correlation = {rho:.3f}."
            )
    figure = draw_figure(
        frame, points, x, y, log_x=log_x, log_y=log_y, title=title, pareto=pareto, fit=fit
    )
    save_figure(figure, Path(path))
    frontier = points[points["on_frontier"]] if pareto else points.iloc[0:0]
    return PlotResult(
        path=Path(path),
        kind="pareto" if pareto else "fit",
        points=points,
        frontier=_in_x_order(frontier, x, y),
        omitted=omitted,
        notes=notes,
        fit=fit,
    )


def frontier_document(result: PlotResult, x: Axis, y: Axis, where: str):
    """What `plot` prints: the frontier's configurations (every point for a fit plot)."""
    from mbprof import __version__
    from mbprof.render.document import Document, Table

    shown = _in_x_order(result.frontier if result.kind == "pareto" else result.points, x, y)
    keys = ["label", "model", "width", "depth", "resolution", x.column, y.column]
    if has_frontier(x, y) and "accuracy_source" in shown.columns:
        keys.append("accuracy_source")
    keys = list(dict.fromkeys(k for k in keys if k in shown.columns))
    if result.kind == "pareto":
        title = f"Pareto frontier of {y.column} against {x.column}: {len(shown)} of {len(result.points)} configurations"
        notes = [
            f"A configuration is on the frontier when no other has {x.column} at least as "
            f"{'low' if x.lower_is_better else 'high'} and {y.column} at least as "
            f"{'low' if y.lower_is_better else 'high'}, one of them strictly."
        ]
    else:
        title = f"{y.column} against {x.column}: {len(shown)} configurations"
        notes = []
    notes += result.notes + [f"Figure written to {result.path}."]
    return Document(
        kind="plot",
        title=title,
        tables=[
            Table(
                name="frontier" if result.kind == "pareto" else "points",
                frame=shown[keys],
                headers={"label": "Point"},
                kinds={"label": "text"},
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__, "source": where, "x": x.column, "y": y.column},
    )
