"""The points of a figure: which rows are drawn, their labels, families and frontier.

A row is drawn when it has both values and no error. Its label is ``width@resolution``
(``d1.2`` added when the depth multiplier is not 1). ``on_frontier`` marks the Pareto
frontier (mbprof.frame.pareto: no other point at least as good on both axes, better on one);
it is drawn only when one axis is accuracy-like (see ``has_frontier``). When neither is,
``correlation`` says how well one axis predicts the other.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mbprof.frame.pareto import pareto_indices
from mbprof.frame.rows import is_missing
from mbprof.render.formats import format_multiplier
from mbprof.render.plots.axes import Axis
from mbprof.render.plots.styles import family_of

if TYPE_CHECKING:
    import pandas as pd


def point_label(row: dict[str, Any]) -> str:
    """'1.0@224', '0.35@96', '1.1@224 d1.2'."""
    label = f"{format_multiplier(float(row['width']))}@{row['resolution']}"
    depth = row.get("depth")
    if not is_missing(depth):
        if float(depth) != 1.0:
            label += f" d{float(depth):g}"
    return label


def plot_points(frame: pd.DataFrame, x: Axis, y: Axis) -> tuple[pd.DataFrame, int]:
    """The rows that can be drawn (both values present, no error), with labels and families."""
    usable = frame[frame[x.column].notna() & frame[y.column].notna()]
    if "error" in usable.columns:
        usable = usable[usable["error"].isna() | (usable["error"].astype(str) == "")]
    usable = usable.copy()
    omitted = len(frame) - len(usable)
    if usable.empty:
        return usable, omitted
    records = usable.to_dict(orient="records")
    usable["label"] = [point_label(r) for r in records]
    families = {m: family_of(str(m)) for m in usable["model"].unique()}
    usable["family"] = [families[m] for m in usable["model"]]
    front = pareto_indices(
        usable[x.column].astype(float).tolist(),
        usable[y.column].astype(float).tolist(),
        x_lower_is_better=x.lower_is_better,
        y_higher_is_better=not y.lower_is_better,
    )
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
