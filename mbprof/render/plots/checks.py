"""Refusing what cannot be plotted, before any drawing: an axis the frame lacks, a cell
that is not a finite number, a figure path with an unknown extension or that cannot be
written. Each refusal is one MbprofError naming the option, file, row or column."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.frame.rows import is_missing
from mbprof.render.plots.axes import Axis, available_axes

if TYPE_CHECKING:
    import pandas as pd

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")

# Columns a point needs beside its axes: its label (width@resolution) and colour (model).
LABEL_COLUMNS = ("model", "width", "resolution")


def check_axes(frame: pd.DataFrame, axes: dict[str, Axis], where: str) -> None:
    """Refuse an axis whose column ``frame`` lacks (or has only empty), naming the ones it has."""
    have = available_axes(frame)
    for option, axis in axes.items():
        if axis.column not in have:
            state = "is empty in" if axis.column in frame.columns else "is not in"
            listed = ", ".join(have) if have else "none"
            raise MbprofError(
                f"{option}: column {axis.column!r} {state} {where}; axes available there: {listed}"
            )


def _cell_number(cell: Any, where: str, position: int, column: str) -> float:
    """One cell as a float (nan when empty); MbprofError naming the file, row and column
    of a cell that is not a finite number."""
    if is_missing(cell):
        return math.nan
    value: float | None = None
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        value = float(cell)
    elif isinstance(cell, str):
        if not cell.strip():
            return math.nan
        try:
            value = float(cell)
        except ValueError:
            value = None
    if value is None:
        raise MbprofError(
            f"{where}, row {position + 1}, column {column!r}: {cell!r} is not a number"
        )
    if math.isinf(value):
        raise MbprofError(
            f"{where}, row {position + 1}, column {column!r}: {cell!r} is not a finite number"
        )
    return value


def check_plot_values(frame: pd.DataFrame, axes: dict[str, Axis], where: str) -> pd.DataFrame:
    """``frame`` with its axis columns (and width, depth) as numbers. Refuses, in one line
    naming the file, row (1 = the first row after the header) and column: a missing
    model, width or resolution column, and a cell that is not a finite number."""
    import pandas as pd

    for column in LABEL_COLUMNS:
        if column not in frame.columns:
            raise MbprofError(
                f"{where} has no {column!r} column; a frame to plot needs "
                f"{', '.join(LABEL_COLUMNS)} beside its axes (as mbprof compare writes it)"
            )
    frame = frame.copy()
    columns = [a.column for a in axes.values()] + ["width", "depth"]
    for column in dict.fromkeys(c for c in columns if c in frame.columns):
        numbers_ = [_cell_number(c, where, i, column) for i, c in enumerate(frame[column])]
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(
            frame[column]
        ):
            frame[column] = pd.Series(numbers_, index=frame.index, dtype=float)
    return frame


def check_figure_path(path: str | Path, option: str) -> Path:
    """Refuse, before any work, a figure path with an unknown extension or that cannot be written."""
    from mbprof.core.files import check_writable

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        shown = path.suffix or "no extension"
        raise MbprofError(
            f"{option}: {str(path)!r} has {shown}; give a file ending in .png, .svg or .pdf"
        )
    return check_writable(path, option)
