"""The one table of quantities: every column of a frame with its header, format kind and
convention, and where it has them its plot axis (``AXES``) and budget key (``METRICS``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mbprof.core.errors import MbprofError


@dataclass(frozen=True)
class Axis:
    """How a column is plotted (``quality``: accuracy-like, a Pareto frontier drawn against it)."""

    name: str
    unit: str
    scale: float = 1.0
    lower_is_better: bool = True
    quality: bool = False
    context: tuple[str, ...] = field(default=())  # frame columns that qualify the unit
    column: str = ""  # filled in from the table


@dataclass(frozen=True)
class Metric:
    """A figure a budget may bound: its key in budget files, its name, what it counts."""

    key: str
    label: str
    what: str
    kind: str = ""  # "count", "bytes" or "ms": how limits are parsed (filled in)
    column: str = ""  # the column that holds the measured figure (filled in)
    shown: str = ""  # format_value's kind of an amount: '300.77M', '1.20 MB' (filled in)


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    description: str
    axis: Axis | None = None
    budget: Metric | None = None


def text_table(text: str, cells: int = 4) -> list[list[str]]:
    """Rows one a line, cells between '|' (the last may go on over indented lines); '#' skipped."""
    rows: list[list[str]] = []
    for line in text.strip("\n").splitlines():
        if line.startswith(" "):
            rows[-1][-1] += " " + line.strip()
        elif line.strip() and not line.startswith("#"):
            rows.append([cell.strip() for cell in line.split("|", cells - 1)])
    return rows


# columns.txt: the columns by group (``key | header | kind | description`` after ``[group]``),
# the plot axes (after ``[axes]``), the figures budgets bound (after ``[budgets]``) and the
# axes' short names (after ``[aliases]``).
_PARTS = re.split(
    r"^\[(\w+)\]\n", Path(__file__).with_name("columns.txt").read_text("utf-8"), flags=re.M
)
_GROUPS = {
    name: text_table(body, 6 if name == "axes" else 4)
    for name, body in zip(_PARTS[1::2], _PARTS[2::2], strict=True)
}
_METRICS = {column: Metric(key, label, what) for column, key, label, what in _GROUPS.pop("budgets")}
_AXES = {
    key: Axis(name, unit, float(scale), how == "lower", how == "quality", tuple(context.split()))
    for key, name, unit, scale, how, context in _GROUPS.pop("axes")
}
ALIASES = dict(_GROUPS.pop("aliases"))
_GROUPS = {name: {row[0]: Column(*row[1:]) for row in rows} for name, rows in _GROUPS.items()}
COLUMNS = {key: c for group in _GROUPS.values() for key, c in group.items()}
COLUMNS = {k: replace(c, axis=_AXES.get(k), budget=_METRICS.get(k)) for k, c in COLUMNS.items()}
ENVIRONMENT = _GROUPS["environment"]
LATENCY_FIGURES, ENVIRONMENT_COLUMNS, DEPLOYMENT_FIGURES = map(
    tuple, (_GROUPS["latency"], ENVIRONMENT, _GROUPS["deployment"])
)


def column(key: str) -> Column:
    """The description of ``key``; an undescribed column renders as its own name."""
    return COLUMNS.get(key, Column(key, "auto", ""))


AXES: dict[str, Axis] = {k: replace(c.axis, column=k) for k, c in COLUMNS.items() if c.axis}
# The kinds of a limit (and of format_value for it), by the kind of its column.
_LIMIT_KINDS = {"millions": ("count", "count"), "kb": ("bytes", "size"), "ms": ("ms", "duration")}
_LIMIT_KINDS["bytes"] = _LIMIT_KINDS["kb"]
METRICS: dict[str, Metric] = {
    c.budget.key: replace(c.budget, kind=kind, shown=shown, column=k)
    for k, c in COLUMNS.items()
    if c.budget
    for kind, shown in [_LIMIT_KINDS[c.kind]]
}


def resolve_axis(name: str, option: str) -> Axis:
    """The axis named ``name`` (a column or an alias); unknown names are refused."""
    key = ALIASES.get(name.strip().lower(), name.strip())
    if key not in AXES:
        names = ", ".join([*AXES, *ALIASES])
        raise MbprofError(f"{option}: unknown axis {name!r}; choose one of {names}")
    return AXES[key]
