"""Scatter plots of configurations (matplotlib's Agg, imported only to draw): bad input refused
first, a colour per family and a marker per model, the Pareto frontier or a least-squares fit,
labels placed to collide with nothing, saved byte for byte; and what ``mbprof plot`` prints."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import numbers
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mbprof.core.errors import MbprofError
from mbprof.core.files import check_writable, write_atomic
from mbprof.core.records import is_import_path
from mbprof.core.units import format_value
from mbprof.frame.columns import AXES, Axis, resolve_axis  # noqa: F401  (re-exported)
from mbprof.frame.rows import is_missing
from mbprof.render.document import Document, Table

if TYPE_CHECKING:
    import pandas as pd


def pareto_indices(
    xs: Sequence[float],
    ys: Sequence[float],
    x_lower_is_better: bool = True,
    y_higher_is_better: bool = True,
) -> list[int]:
    """Indices of the non-dominated points in order of x (ties on the frontier kept)."""
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
            blank = is_missing(cell) or (isinstance(cell, str) and not cell.strip())
            value = math.nan if blank else None
            if not blank and isinstance(cell, (numbers.Real, str)) and not isinstance(cell, bool):
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
    from mbprof.models import get_model_info

    families = {}  # the registry's, "user model" for an import path (never imported)
    for m in map(str, usable["model"].unique()):
        try:
            families[m] = "user model" if is_import_path(m) else get_model_info(m).family
        except Exception:  # noqa: BLE001 - user models and unknown names keep their own name
            families[m] = m
    usable["family"] = [families[str(m)] for m in usable["model"]]
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
    save_figure(figure, path)
    frontier = points[points["on_frontier"]] if pareto else points.iloc[0:0]
    frontier = frontier.sort_values([x.column, y.column]).reset_index(drop=True)
    return PlotResult(path, "pareto" if pareto else "fit", points, frontier, omitted, notes, fit)


def frontier_document(result: PlotResult, x: Axis, y: Axis, where: str):
    """What `plot` prints: the frontier's configurations (every point for a fit plot)."""
    shown = result.frontier if result.kind == "pareto" else result.points
    shown = shown.sort_values([x.column, y.column]).reset_index(drop=True)
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


def axis_scale(axis: Axis, values: pd.Series) -> tuple[float, str]:
    """The factor to multiply raw values by, and the unit shown on the axis."""
    if axis.unit == "bytes":  # KB, MB from 10 MB
        return (1e-6, "MB") if values.max() >= 10_000_000 else (1e-3, "KB")
    return axis.scale, axis.unit


def axis_label(axis: Axis, frame: pd.DataFrame, values: pd.Series, log: bool = False) -> str:
    """'MAdds (millions, batch 1)'; a logarithmic axis says so: '(..., log scale)'."""
    parts = [axis_scale(axis, values)[1]]
    for key in (k for k in axis.context if k in frame.columns):
        found = frame[key].dropna().unique()
        if len(found) == 1:
            n = int(found[0]) if key in ("batch", "threads") else 0
            text = {"batch": f"batch {n}", "threads": f"{n} thread{'s' if n != 1 else ''}"}
            parts.append(text.get(key, str(found[0])))
    return f"{axis.name} ({', '.join(parts)}{', log scale' if log else ''})"


FAMILY_COLOURS = {
    "mobilenetv2": "#1f77b4",
    "mobilenetv1": "#ff7f0e",
    "shufflenet": "#2ca02c",
    "nasnet": "#d62728",
    "mobilenetv3": "#9467bd",
}
OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def _squashed(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def variant_name(model: str, family: str) -> str:
    """How a figure names ``model`` beside others of its ``family``: 'MobileNetV3-Small'."""
    want = _squashed(family)
    cut = next((i for i in range(len(model) + 1) if _squashed(model[:i]) == want), None)
    if cut is None:
        return f"{family} ({model})"
    rest = model[cut:].strip("_-. ")
    if not rest:
        return family
    return f"{family}-{rest.title()}" if rest.isalpha() else f"{family} ({rest})"


def new_axes(size: tuple[float, float]):
    """An Agg figure of ``size`` inches (150 dpi, laid out) and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


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
    from matplotlib.ticker import FuncFormatter, LogLocator

    xs, ys = (
        (points[a.column].astype(float) * axis_scale(a, points[a.column])[0]).tolist()
        for a in (x, y)
    )
    # More room for many points: the labels keep their size, the plot grows.
    fig, ax = new_axes((8.0, 5.6) if len(points) <= 30 else (10.0, 7.0))
    # model -> (colour, marker, legend name): a colour per family, a marker per model, the
    # legend naming the family, or the variant beside others of its family.
    families = dict(zip(points["model"], points["family"], strict=True))
    spare, styles = itertools.cycle(OTHER_COLOURS), {}
    for family in dict.fromkeys(families.values()):  # in order of appearance
        models = sorted(m for m, f in families.items() if f == family)
        squashed = family.lower().replace(" ", "").replace("-", "").replace("_", "")
        preset = (c for p, c in FAMILY_COLOURS.items() if squashed.startswith(p))
        colour = next(preset, None) or next(spare)
        for index, model in enumerate(models):
            name = family if len(models) == 1 else variant_name(str(model), family)
            styles[model] = (colour, MARKERS[index % len(MARKERS)], name)
    dots = {"s": 34, "edgecolors": "white", "linewidths": 0.6, "zorder": 3}
    for model, (colour, marker, name) in styles.items():
        rows = points.index[points["model"] == model]
        mine = [xs[i] for i in rows], [ys[i] for i in rows]
        ax.scatter(*mine, color=colour, marker=marker, label=name, **dots)
    line_xy = None
    rings = points["on_frontier"].tolist() if pareto else [False] * len(points)
    if pareto:
        front = sorted((i for i in range(len(points)) if rings[i]), key=lambda i: (xs[i], ys[i]))
        line_xy = [xs[i] for i in front], [ys[i] for i in front]
        label = f"Pareto frontier ({len(front)})"
        ax.plot(*line_xy, "-", color="0.3", lw=1.1, zorder=2, label=label)
        ax.scatter(*line_xy, s=95, facecolors="none", edgecolors="0.2", linewidths=0.9, zorder=4)
    elif fit is not None and not math.isnan(fit[0]) and len(set(xs)) > 1:
        slope, intercept = np.polyfit(xs, ys, 1)
        grid = np.linspace(min(xs), max(xs), 50)
        label = f"least-squares fit (linear scale), r = {fit[0]:.2f}"
        ax.plot(grid, slope * grid + intercept, "--", color="0.4", lw=1.0, zorder=2, label=label)
        line_xy = (grid.tolist(), (slope * grid + intercept).tolist())

    logs = [(ax.xaxis, ax.set_xscale, ax.get_xlim)] * log_x
    logs += [(ax.yaxis, ax.set_yscale, ax.get_ylim)] * log_y
    for axis, scale, _ in logs:
        scale("log")
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.margins(x=0.08, y=0.08)
    for axis, _, limits in logs:
        # Labelled ticks at 1, 2, 3 and 5 of each decade (300M can be read off), every
        # digit on a short span.
        low, high = limits()
        subs = (1.0, 2.0, 3.0, 5.0)
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        if sum(low <= m * 10.0**e <= high for e in decades for m in subs) < 3:
            subs = tuple(float(d) for d in range(1, 10))
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        rest = tuple(float(d) for d in range(1, 10) if d not in subs)
        axis.set_minor_locator(LogLocator(base=10, subs=rest or (1.0,)))
    ax.grid(True, which="major", color="0.88", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    ax.set_xlabel(axis_label(x, frame, points[x.column], log=log_x), fontsize=10)
    ax.set_ylabel(axis_label(y, frame, points[y.column], log=log_y), fontsize=10)
    first, _, rest = x.name.partition(" ")
    x_name = (first.lower() if first[1:].islower() else first) + (f" {rest}" if rest else "")
    outlined = " (Pareto frontier outlined)" if pareto else ""
    ax.set_title(title or f"{y.name} against {x_name}{outlined}", fontsize=12)
    ax.set_xlim(*ax.get_xlim())  # freeze the limits before labels are measured
    ax.set_ylim(*ax.get_ylim())
    fig.canvas.draw()  # lay out the axes so that label positions are measured in place

    # Frontier points first, then the most crowded: sparse points have room to spare.
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    crowd = (dist < 60).sum(axis=1)
    order = sorted(range(len(xs)), key=lambda i: (not rings[i], -int(crowd[i]), -ys[i], xs[i]))
    labels = points["label"].tolist()
    if points["model"].nunique() > 1:  # two "1.0@224" points: say whose each is
        labels = [f"{styles[m][2]} {t}" for m, t in zip(points["model"], labels, strict=True)]
    colours = [styles[m][0] for m in points["model"]]
    fontsize = 7.0 if len(xs) > 12 else 8.0
    place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize)
    ax.legend(loc="best", fontsize=8, framealpha=0.92, edgecolor="0.8")
    notes = []
    if (x.quality or y.quality) and "accuracy_source" in points.columns:
        sources = [s for s in points["accuracy_source"].dropna().unique() if str(s)]
        notes += ["Top-1 from: " + "; ".join(map(str, sources)) + "."] if sources else []
    if "madds" in (x.column, y.column):
        notes.append("MAdds counted by mbprof (conv + FC multiply-accumulates, fvcore).")
    if notes:
        footnote(fig, textwrap.wrap(" ".join(notes), width=int(150 * fig.get_figwidth() / 8.0)))
    return fig


def footnote(fig, lines: list[str], y: float = 0.008, warning: list[str] = ()) -> None:
    """Small grey lines under the axes (``warning``: red lines above them), room made."""
    fig.text(0.01, y, "\n".join(lines), fontsize=6.5, color="0.35", va="bottom")
    if warning:
        y = 0.012 + 0.022 * len(lines)
        fig.text(0.01, y, "\n".join(warning), fontsize=7.5, color="#b00020", va="bottom")
    bottom = 0.012 + 0.022 * (len(lines) + len(warning))
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` whole (PNG, SVG or PDF by the extension), the same bytes each time."""
    buffer = io.BytesIO()
    fmt = path.suffix.lower().lstrip(".")
    # No creation dates or version strings, so that a figure regenerates byte for byte.
    keys = {"png": ("Software",), "svg": ("Date", "Creator")}
    metadata = dict.fromkeys(keys.get(fmt, ("CreationDate", "Creator", "Producer")))
    fig.savefig(buffer, format=fmt, metadata=metadata)
    write_atomic(path, buffer.getvalue())


def _overlap(box, boxes) -> float:
    """Summed intersection area of ``box`` (x0, y0, x1, y1) with each row of ``boxes``."""
    if len(boxes) == 0:
        return 0.0
    boxes = np.asarray(boxes, dtype=float)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return float((w * h).sum())


def _candidates() -> list[tuple[float, float, str, str, bool]]:
    """Offsets in points around a marker, nearest first: (dx, dy, ha, va, leader line)."""
    out = []
    for radius in (4.0, 9.0, 15.0, 22.0, 30.0):
        for step in (1, 11, 5, 7, 0, 6, 3, 9, 2, 10, 4, 8):  # diagonals and sides first
            gap = 1.25 if step % 3 == 0 else 1.0  # on the sides: a gap from the marker's edge
            angle = math.radians(30 * step)
            dx, dy = radius * math.cos(angle) * gap, radius * math.sin(angle) * gap
            ha = "left" if dx > 1e-6 else "right" if dx < -1e-6 else "center"
            va = "bottom" if dy > 1e-6 else "top" if dy < -1e-6 else "center"
            out.append((round(dx, 3), round(dy, 3), ha, va, radius > 5))
    return out


def _boxes_along(start, end, px_per_pt: float, half: float, ends: bool):
    """Small boxes about every 3 points along a segment (``ends`` False: ends left free)."""
    (x0, y0), (x1, y1) = start, end
    steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / (3 * px_per_pt)))
    ts = np.linspace(0, 1, steps) if ends else [k / steps for k in range(1, steps)]
    centres = [(x0 + t * (x1 - x0), y0 + t * (y1 - y0)) for t in ts]
    return [(x - half, y - half, x + half, y + half) for x, y in centres]


def place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize: float) -> None:
    """Each label at the first nearby spot that covers nothing, else the least-covered."""
    from matplotlib.colors import to_rgb

    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    frame_extent = [ax.get_window_extent(renderer).extents]
    radii = [(6.0 if ring else 4.0) * px_per_pt for ring in rings]
    markers = [(x - r, y - r, x + r, y + r) for (x, y), r in zip(pts, radii, strict=True)]
    lines = []
    if line_xy is not None and len(line_xy[0]) > 1:
        lp = ax.transData.transform(np.column_stack(line_xy))
        for start, end in zip(lp[:-1], lp[1:], strict=True):
            lines += _boxes_along(start, end, px_per_pt, 1.5, ends=True)
    sizes = {}
    for text in set(labels):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        sizes[text] = probe.get_window_extent(renderer).size
        probe.remove()
    placed: list[tuple[float, float, float, float]] = []
    leaders: list[tuple[float, float, float, float]] = []
    for i in order:
        w, h = sizes[labels[i]]
        others = [m for j, m in enumerate(markers) if j != i]
        best, best_score = None, math.inf
        for dx, dy, ha, va, leader in _candidates():
            ax_, ay_ = pts[i][0] + dx * px_per_pt, pts[i][1] + dy * px_per_pt
            x0 = ax_ - (w if ha == "right" else w / 2 if ha == "center" else 0)
            y0 = ay_ - (h if va == "top" else h / 2 if va == "center" else 0)
            box = (x0, y0, x0 + w, y0 + h)
            weights = ((placed, 3), (others, 2), (lines, 0.5), (leaders, 0.5))
            score = sum(k * _overlap(box, boxes) for boxes, k in weights)
            score += 5 * (w * h - _overlap(box, frame_extent))
            segment = _boxes_along(pts[i], (ax_, ay_), px_per_pt, 1.0, ends=False) if leader else []
            score += sum(3 * _overlap(b, placed) + _overlap(b, others) for b in segment)
            if score < best_score:
                best, best_score = (dx, dy, ha, va, leader, box, segment), score
            if score == 0:
                break
        dx, dy, ha, va, leader, box, segment = best
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3}
        darker = tuple(0.6 * c for c in to_rgb(colours[i]))
        text = {"ha": ha, "va": va, "fontsize": fontsize, "color": darker, "zorder": 5}
        text["arrowprops"] = arrow if leader else None
        ax.annotate(labels[i], (xs[i], ys[i]), (dx, dy), textcoords="offset points", **text)
        placed.append(box)
        leaders += segment
