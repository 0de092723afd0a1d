"""Scatter plots of configurations (matplotlib, Agg, imported only to draw): what cannot be
plotted refused before any drawing, the points, the Pareto frontier against an accuracy-like
axis or a least-squares fit otherwise, and the document ``mbprof plot`` prints."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.core.errors import MbprofError
from mbprof.core.units import format_value
from mbprof.frame.columns import AXES, Axis, resolve_axis
from mbprof.frame.rows import is_missing
from mbprof.render.document import Document, Table
from mbprof.render.plots.draw import axis_label, draw_figure, family_of, save_figure

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AXES", "Axis", "axis_label", "draw_figure", "resolve_axis"]


def pareto_indices(
    xs: Sequence[float],
    ys: Sequence[float],
    x_lower_is_better: bool = True,
    y_higher_is_better: bool = True,
) -> list[int]:
    """Indices of the non-dominated points in order of x (ties on the frontier kept)."""
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} and {len(ys)}")
    # Turn both axes into "smaller is better", then sweep in order of the first.
    signs = (1 if x_lower_is_better else -1, -1 if y_higher_is_better else 1)
    costs = [(signs[0] * x, signs[1] * y) for x, y in zip(xs, ys, strict=True)]
    kept: list[int] = []
    last = (None, math.inf)  # the last point kept (ties with it are kept too)
    for i in sorted(range(len(xs)), key=costs.__getitem__):
        if costs[i][1] < last[1] or costs[i] == last:
            kept.append(i)
            last = costs[i]
    return sorted(kept, key=lambda i: (xs[i], ys[i]))


def available_axes(frame: pd.DataFrame) -> list[str]:
    """The plottable columns of ``frame`` that hold at least one number."""
    return [key for key in AXES if key in frame.columns and frame[key].notna().any()]


def _checked(frame: pd.DataFrame, axes: dict[str, Axis], where: str) -> pd.DataFrame:
    """``frame`` with its axis columns (and width, depth) as numbers, else refused: an axis
    whose column it lacks (or has only empty), a label column missing, a cell not a number."""
    import pandas as pd

    have = available_axes(frame)
    for option, axis in axes.items():
        if axis.column not in have:
            state = "is empty in" if axis.column in frame.columns else "is not in"
            listed = ", ".join(have) if have else "none"
            raise MbprofError(
                f"{option}: column {axis.column!r} {state} {where}; axes available there: {listed}"
            )
    # Columns a point needs beside its axes: its label (width@resolution) and colour (model).
    for column in ("model", "width", "resolution"):
        if column not in frame.columns:
            raise MbprofError(
                f"{where} has no {column!r} column; a frame to plot needs "
                "model, width, resolution beside its axes (as mbprof compare writes it)"
            )
    frame = frame.copy()
    columns = [a.column for a in axes.values()] + ["width", "depth"]
    for column in dict.fromkeys(c for c in columns if c in frame.columns):
        values = []
        for position, cell in enumerate(frame[column]):
            if is_missing(cell) or (isinstance(cell, str) and not cell.strip()):
                values.append(math.nan)
                continue
            value = None
            if isinstance(cell, (numbers.Real, str)) and not isinstance(cell, bool):
                with contextlib.suppress(ValueError):
                    value = float(cell)
            said = f"{where}, row {position + 1}, column {column!r}: {cell!r} is not a"
            if value is None or math.isinf(value):
                raise MbprofError(f"{said} number" if value is None else f"{said} finite number")
            values.append(value)
        kind = frame[column].dtype
        if not pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_bool_dtype(kind):
            frame[column] = pd.Series(values, index=frame.index, dtype=float)
    return frame


def check_figure_path(path: str | Path, option: str) -> Path:
    """Refuse, before any work, a figure path of an unknown kind or that cannot be written."""
    from mbprof.core.files import check_writable

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        shown = path.suffix or "no extension"
        raise MbprofError(
            f"{option}: {str(path)!r} has {shown}; give a file ending in .png, .svg or .pdf"
        )
    return check_writable(path, option)


def plot_points(frame: pd.DataFrame, x: Axis, y: Axis) -> tuple[pd.DataFrame, int]:
    """The rows that can be drawn (both values present, no error), with labels and families."""
    usable = frame[frame[x.column].notna() & frame[y.column].notna()]
    if "error" in usable.columns:
        usable = usable[usable["error"].isna() | (usable["error"].astype(str) == "")]
    usable = usable.copy()
    omitted = len(frame) - len(usable)
    if usable.empty:
        return usable, omitted
    labels = []  # '1.0@224', '0.35@96', '1.1@224 d1.2'
    for row in usable.to_dict(orient="records"):
        label = f"{format_value(float(row['width']), 'float')}@{row['resolution']}"
        plain = is_missing(depth := row.get("depth")) or float(depth) == 1.0
        labels.append(label if plain else f"{label} d{float(depth):g}")
    usable["label"] = labels
    families = {m: family_of(str(m)) for m in usable["model"].unique()}
    usable["family"] = [families[m] for m in usable["model"]]
    xs, ys = (usable[a.column].astype(float).tolist() for a in (x, y))
    front = pareto_indices(xs, ys, x.lower_is_better, not y.lower_is_better)
    usable["on_frontier"] = False
    usable.iloc[front, usable.columns.get_loc("on_frontier")] = True
    return usable.reset_index(drop=True), omitted


def correlation(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Pearson's r and Spearman's rank correlation of two lists (nan when undefined)."""
    import pandas as pd

    a, b = pd.Series(xs, dtype=float), pd.Series(ys, dtype=float)
    if len(a) < 3:
        return math.nan, math.nan
    return float(a.corr(b)), float(a.rank().corr(b.rank()))


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
    """Draw ``y`` against ``x`` for every row of ``frame`` into ``path`` (PNG, SVG or PDF)."""
    frame = _checked(frame, {"--x": x, "--y": y}, where)
    path = check_figure_path(path, "figure")
    points, omitted = plot_points(frame, x, y)
    if points.empty:
        raise MbprofError(f"no row of {where} has both {x.column} and {y.column}; nothing to plot")
    for on, option, axis in ((log_x, "--log-x", x), (log_y, "--log-y", y)):
        if on and (points[axis.column] <= 0).any():
            raise MbprofError(f"{option}: {axis.column} has values <= 0 in {where}; drop {option}")
    pareto = x.quality or y.quality  # accuracy-like: a frontier; a fit otherwise
    notes: list[str] = []
    if omitted:
        rows, have, are = ("rows", "have", "are") if omitted != 1 else ("row", "has", "is")
        said = f"{omitted} {rows} of {where} {have} no {x.column} or {y.column}"
        notes.append(f"{said} and {are} not drawn.")
    fit = None if pareto else correlation(points[x.column].tolist(), points[y.column].tolist())
    if fit and not math.isnan(fit[0]):
        notes.append(
            f"{y.column} against {x.column} over {len(points)} configurations: "
            f"Pearson r = {fit[0]:.3f}, Spearman rank correlation = {fit[1]:.3f}."
        )
    figure = draw_figure(
        frame, points, x, y, log_x=log_x, log_y=log_y, title=title, pareto=pareto, fit=fit
    )
    save_figure(figure, Path(path))
    frontier = _in_x_order(points[points["on_frontier"]] if pareto else points.iloc[0:0], x, y)
    kind = "pareto" if pareto else "fit"
    return PlotResult(Path(path), kind, points, frontier, omitted, notes, fit)


def frontier_document(result: PlotResult, x: Axis, y: Axis, where: str):
    """What `plot` prints: the frontier's configurations (every point for a fit plot)."""
    shown = _in_x_order(result.frontier if result.kind == "pareto" else result.points, x, y)
    keys = ["label", "model", "width", "depth", "resolution", x.column, y.column]
    if (x.quality or y.quality) and "accuracy_source" in shown.columns:
        keys.append("accuracy_source")
    keys = list(dict.fromkeys(k for k in keys if k in shown.columns))
    if result.kind == "pareto":
        title = f"Pareto frontier of {y.column} against {x.column}: {len(shown)} of "
        title += f"{len(result.points)} configurations"
        notes = [
            f"A configuration is on the frontier when no other has {x.column} at least as "
            f"{'low' if x.lower_is_better else 'high'} and {y.column} at least as "
            f"{'low' if y.lower_is_better else 'high'}, one of them strictly."
        ]
    else:
        title = f"{y.column} against {x.column}: {len(shown)} configurations"
        notes = []
    notes += result.notes + [f"Figure written to {result.path}."]
    name = "frontier" if result.kind == "pareto" else "points"
    table = Table(name, shown[keys], headers={"label": "Point"}, kinds={"label": "text"})
    meta = {"source": where, "x": x.column, "y": y.column}
    return Document(title, tables=[table], notes=notes, meta=meta, kind="plot")
