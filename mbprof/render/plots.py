"""Scatter plots of configurations with their Pareto frontier (matplotlib, Agg).

Each point is one configuration, labelled ``width@resolution`` (``d1.2`` added when the
depth multiplier is not 1), coloured by model family. When one axis is accuracy
(top-1, top-5) the Pareto frontier is drawn and returned. When neither is (latency
against MAdds) a least-squares line is drawn instead, with the correlation in the
legend: how well one predicts the other on this machine.

matplotlib is imported inside the functions that draw, and only the Agg-based
``Figure`` API is used (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.frame.pareto import pareto_indices

if TYPE_CHECKING:
    import pandas as pd

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
BYTES_MB_FROM = 10_000_000  # byte axes switch from KB to MB above this


@dataclass(frozen=True)
class Axis:
    """A column that can be plotted: its name, unit, scale and which way is better."""

    column: str
    name: str
    unit: str
    scale: float = 1.0
    lower_is_better: bool = True
    quality: bool = False  # accuracy-like: a Pareto frontier is drawn against it
    context: tuple[str, ...] = field(default=())  # frame columns that qualify the unit


AXES: dict[str, Axis] = {
    a.column: a
    for a in (
        Axis("madds", "MAdds", "millions, batch 1", 1e-6),
        Axis("params", "Parameters", "millions", 1e-6),
        Axis("peak_act_bytes", "Peak activation memory", "bytes", context=("mem_dtype",)),
        Axis(
            "peak_act_bytes_efficient",
            "Peak activation memory, memory-efficient blocks",
            "bytes",
            context=("mem_dtype",),
        ),
        Axis("max_tensor_bytes", "Largest activation tensor", "bytes", context=("mem_dtype",)),
        Axis(
            "latency_ms",
            "Latency",
            "ms per batch",
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis(
            "latency_ms_per_image",
            "Latency per image",
            "ms",
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis(
            "throughput_ips",
            "Throughput",
            "images/s",
            lower_is_better=False,
            context=("device", "dtype", "batch", "threads"),
        ),
        Axis("top1", "ImageNet top-1", "%", lower_is_better=False, quality=True),
        Axis("top5", "ImageNet top-5", "%", lower_is_better=False, quality=True),
        Axis("phone_latency_ms", "Published phone latency", "ms"),
    )
}
ALIASES = {
    "memory": "peak_act_bytes",
    "latency": "latency_ms",
    "throughput": "throughput_ips",
    "accuracy": "top1",
}

# Fixed colours, so a family looks the same in every figure (matplotlib's tab10 order).
FAMILY_COLOURS = {
    "mobilenetv2": "#1f77b4",
    "mobilenetv1": "#ff7f0e",
    "shufflenet": "#2ca02c",
    "nasnet": "#d62728",
    "mobilenetv3": "#9467bd",
}
OTHER_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def resolve_axis(name: str, option: str) -> Axis:
    """The axis named ``name`` (a column or an alias); unknown names are refused."""
    key = ALIASES.get(name.strip().lower(), name.strip())
    if key not in AXES:
        names = ", ".join([*AXES, *ALIASES])
        raise MbprofError(f"{option}: unknown axis {name!r}; choose one of {names}")
    return AXES[key]


def available_axes(frame: pd.DataFrame) -> list[str]:
    """The plottable columns of ``frame`` that hold at least one number."""
    return [key for key in AXES if key in frame.columns and frame[key].notna().any()]


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


# Columns a point needs beside its axes: its label (width@resolution) and colour (model).
LABEL_COLUMNS = ("model", "width", "resolution")


def _cell_number(cell: Any, where: str, position: int, column: str) -> float:
    """One cell as a float (nan when empty); MbprofError naming the file, row and column
    of a cell that is not a finite number."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
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
    from mbprof.render.export import check_writable

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        shown = path.suffix or "no extension"
        raise MbprofError(
            f"{option}: {str(path)!r} has {shown}; give a file ending in .png, .svg or .pdf"
        )
    return check_writable(path, option)


def family_of(model: str) -> str:
    """The registry's family of ``model`` (the model name itself when it is not registered).
    A model given as an import path is a "user model": the name comes from a data file, so
    it is never imported here."""
    try:
        from mbprof.models import get_model_info
        from mbprof.models.user import is_import_path

        if is_import_path(model):
            return "user model"

        return get_model_info(model).family
    except Exception:  # noqa: BLE001 - user models and unknown names keep their own name
        return model


def _family_colour(family: str, others: dict[str, str]) -> str:
    squashed = family.lower().replace(" ", "").replace("-", "").replace("_", "")
    for prefix, colour in FAMILY_COLOURS.items():
        if squashed.startswith(prefix):
            return colour
    if family not in others:
        others[family] = OTHER_COLOURS[len(others) % len(OTHER_COLOURS)]
    return others[family]


def point_label(row: dict[str, Any]) -> str:
    """'1.0@224', '0.35@96', '1.1@224 d1.2'."""
    from mbprof.render.formats import format_multiplier

    label = f"{format_multiplier(float(row['width']))}@{row['resolution']}"
    depth = row.get("depth")
    if depth is not None and not (isinstance(depth, float) and math.isnan(depth)):
        if float(depth) != 1.0:
            label += f" d{float(depth):g}"
    return label


def _context_text(frame: pd.DataFrame, columns: tuple[str, ...]) -> str:
    parts = []
    for key in columns:
        if key not in frame.columns:
            continue
        values = frame[key].dropna().unique()
        if len(values) != 1:
            continue
        value = values[0]
        if key == "batch":
            parts.append(f"batch {int(value)}")
        elif key == "threads":
            parts.append(f"{int(value)} thread{'s' if int(value) != 1 else ''}")
        else:
            parts.append(str(value))
    return ", ".join(parts)


def axis_scale(axis: Axis, values: pd.Series) -> tuple[float, str]:
    """The factor to multiply raw values by, and the unit shown on the axis."""
    if axis.unit == "bytes":
        return (1e-6, "MB") if values.max() >= BYTES_MB_FROM else (1e-3, "KB")
    return axis.scale, axis.unit


def axis_label(axis: Axis, frame: pd.DataFrame, values: pd.Series) -> str:
    _, unit = axis_scale(axis, values)
    context = _context_text(frame, axis.context)
    return f"{axis.name} ({unit}{', ' + context if context else ''})"


@dataclass
class PlotResult:
    """What a figure shows: the points drawn, the frontier (or the fit), what was left out."""

    path: Path
    kind: str  # "pareto" or "fit"
    points: pd.DataFrame  # every configuration drawn, with label and on_frontier
    frontier: pd.DataFrame  # the frontier's rows in order of x (empty for "fit")
    omitted: int  # rows without both values (or marked with an error)
    notes: list[str] = field(default_factory=list)


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
    if log_x and (points[x.column] <= 0).any():
        raise MbprofError(f"--log-x: {x.column} has values <= 0 in {where}; drop --log-x")
    if log_y and (points[y.column] <= 0).any():
        raise MbprofError(f"--log-y: {y.column} has values <= 0 in {where}; drop --log-y")
    pareto = x.quality or y.quality
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
    frontier = frontier.sort_values([x.column, y.column]).reset_index(drop=True)
    return PlotResult(
        path=Path(path),
        kind="pareto" if pareto else "fit",
        points=points,
        frontier=frontier,
        omitted=omitted,
        notes=notes,
    )


# --- drawing -------------------------------------------------------------------------


def _model_styles(points: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """model -> (colour, marker, legend name): a colour per family, a marker per model."""
    others: dict[str, str] = {}
    styles: dict[str, tuple[str, str, str]] = {}
    by_family: dict[str, list[str]] = {}
    for model, family in dict(zip(points["model"], points["family"], strict=True)).items():
        by_family.setdefault(family, []).append(model)
    for family in sorted(by_family, key=lambda f: list(points["family"]).index(f)):
        models = sorted(by_family[family])
        for index, model in enumerate(models):
            name = family if len(models) == 1 else f"{family} ({model})"
            colour = _family_colour(family, others)
            styles[model] = (colour, MARKERS[index % len(MARKERS)], name)
    return styles


def _overlap(box, boxes) -> float:
    """Summed intersection area of ``box`` (x0, y0, x1, y1) with each row of ``boxes``."""
    import numpy as np

    if len(boxes) == 0:
        return 0.0
    boxes = np.asarray(boxes, dtype=float)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return float((w * h).sum())


def _candidates() -> list[tuple[float, float, str, str, bool]]:
    """Offsets in points around a marker, nearest first: (dx, dy, ha, va, leader line).
    Twelve directions on rings of growing radius; labels beyond the first ring get a line."""
    out = []
    for radius in (4.0, 9.0, 15.0, 22.0, 30.0):
        leader = radius > 5
        for step in (1, 11, 5, 7, 0, 6, 3, 9, 2, 10, 4, 8):  # diagonals and sides first
            angle = math.radians(30 * step)
            dx, dy = radius * math.cos(angle), radius * math.sin(angle)
            ha = "left" if dx > 1e-6 else "right" if dx < -1e-6 else "center"
            va = "bottom" if dy > 1e-6 else "top" if dy < -1e-6 else "center"
            if ha == "center" or va == "center":  # keep a gap from the marker's edge
                dx, dy = dx * 1.25, dy * 1.25
            out.append((round(dx, 3), round(dy, 3), ha, va, leader))
    return out


def _darker(colour: str, factor: float = 0.6) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(factor * c for c in to_rgb(colour))


def _place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize: float) -> None:
    """Greedy placement: each label takes the first nearby spot that covers no marker,
    line or other label and stays inside the axes; failing that, the least-covered spot
    (a thin leader line joins a label set further out to its point)."""
    import numpy as np

    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    frame_box = ax.get_window_extent(renderer)
    markers = []
    for (x, y), ring in zip(pts, rings, strict=True):
        radius = (6.0 if ring else 4.0) * px_per_pt
        markers.append((x - radius, y - radius, x + radius, y + radius))
    lines = []
    if line_xy is not None and len(line_xy[0]) > 1:
        lp = ax.transData.transform(np.column_stack(line_xy))
        for (x0, y0), (x1, y1) in zip(lp[:-1], lp[1:], strict=True):
            steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / (3 * px_per_pt)))
            for t in np.linspace(0, 1, steps):
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                lines.append((x - 1.5, y - 1.5, x + 1.5, y + 1.5))
    sizes = {}
    for text in set(labels):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        sizes[text] = (extent.width, extent.height)
        probe.remove()
    placed: list[tuple[float, float, float, float]] = []
    leaders: list[tuple[float, float, float, float]] = []
    frame_extent = [frame_box.extents]
    for i in order:
        w, h = sizes[labels[i]]
        others = [m for j, m in enumerate(markers) if j != i]
        best, best_score = None, math.inf
        for dx, dy, ha, va, leader in _candidates():
            ax_, ay_ = pts[i][0] + dx * px_per_pt, pts[i][1] + dy * px_per_pt
            x0 = ax_ - (w if ha == "right" else w / 2 if ha == "center" else 0)
            y0 = ay_ - (h if va == "top" else h / 2 if va == "center" else 0)
            box = (x0, y0, x0 + w, y0 + h)
            score = (
                3 * _overlap(box, placed)
                + 2 * _overlap(box, others)
                + 0.5 * _overlap(box, lines)
                + 0.5 * _overlap(box, leaders)
                + 5 * (w * h - _overlap(box, frame_extent))
            )
            segment = _segment_boxes(pts[i], (ax_, ay_), px_per_pt) if leader else []
            if segment:
                score += sum(3 * _overlap(b, placed) + _overlap(b, others) for b in segment)
            if score < best_score:
                best, best_score = (dx, dy, ha, va, leader, box, segment), score
            if score == 0:
                break
        dx, dy, ha, va, leader, box, segment = best
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 3}
        ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=fontsize,
            color=_darker(colours[i]),
            arrowprops=arrow if leader else None,
            zorder=5,
        )
        placed.append(box)
        leaders += segment


def _label_order(ax, xs, ys, frontier) -> list[int]:
    """Frontier points first, then the most crowded: sparse points have room to spare."""
    import numpy as np

    pts = ax.transData.transform(np.column_stack([xs, ys]))
    dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    crowd = (dist < 60).sum(axis=1)
    first = frontier or [False] * len(xs)
    return sorted(range(len(xs)), key=lambda i: (not first[i], -int(crowd[i]), -ys[i], xs[i]))


def _segment_boxes(start, end, px_per_pt: float) -> list[tuple[float, float, float, float]]:
    """Small boxes along a leader line, to keep other labels off it."""
    (x0, y0), (x1, y1) = start, end
    steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / (3 * px_per_pt)))
    boxes = []
    for k in range(1, steps):  # the ends sit on the marker and the label
        t = k / steps
        x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        boxes.append((x - 1.0, y - 1.0, x + 1.0, y + 1.0))
    return boxes


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
    from matplotlib.ticker import FuncFormatter, LogLocator

    x_factor, _ = axis_scale(x, points[x.column])
    y_factor, _ = axis_scale(y, points[y.column])
    xs = (points[x.column].astype(float) * x_factor).tolist()
    ys = (points[y.column].astype(float) * y_factor).tolist()

    # More room for many points: the labels keep their size, the plot grows.
    size = (8.0, 5.6) if len(points) <= 30 else (10.0, 7.0)
    fig = Figure(figsize=size, dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = _model_styles(points)
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
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_minor_locator(LogLocator(base=10, subs=(3.0, 4.0, 6.0, 7.0, 8.0, 9.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.margins(x=0.08, y=0.08)
    ax.grid(True, which="major", color="0.88", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    ax.set_xlabel(axis_label(x, frame, points[x.column]), fontsize=10)
    ax.set_ylabel(axis_label(y, frame, points[y.column]), fontsize=10)
    first, _, rest = x.name.partition(" ")
    x_name = (first.lower() if first[1:].islower() else first) + (f" {rest}" if rest else "")
    default_title = f"{y.name} against {x_name}"
    if pareto:
        default_title += " (Pareto frontier outlined)"
    ax.set_title(title or default_title, fontsize=12)
    ax.set_xlim(*ax.get_xlim())  # freeze the limits before labels are measured
    ax.set_ylim(*ax.get_ylim())
    fig.canvas.draw()  # lay out the axes so that label positions are measured in place

    order = _label_order(ax, xs, ys, points["on_frontier"].tolist() if pareto else None)
    fontsize = 7.0 if len(points) > 12 else 8.0
    rings = points["on_frontier"].tolist() if pareto else [False] * len(points)
    colours = [styles[m][0] for m in points["model"]]
    labels = points["label"].tolist()
    _place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize)
    ax.legend(loc="best", fontsize=8, framealpha=0.92, edgecolor="0.8")
    footnote = _footnote(points, x, y)
    if footnote:
        import textwrap

        lines = textwrap.wrap(footnote, width=int(150 * fig.get_figwidth() / 8.0))
        fig.text(0.01, 0.008, "\n".join(lines), fontsize=6.5, color="0.35", va="bottom")
        bottom = 0.012 + 0.022 * len(lines)
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` whole (PNG, SVG or PDF by the extension), without dates or versions so
    that the same figure gives the same bytes."""
    import io

    from mbprof.render.export import write_atomic

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


def _footnote(points: pd.DataFrame, x: Axis, y: Axis) -> str:
    parts = []
    if (x.quality or y.quality) and "accuracy_source" in points.columns:
        sources = [s for s in points["accuracy_source"].dropna().unique() if str(s)]
        if sources:
            parts.append("Top-1 from: " + "; ".join(map(str, sources)) + ".")
    if "madds" in (x.column, y.column):
        parts.append("MAdds counted by mbprof (conv + FC multiply-accumulates, fvcore).")
    return " ".join(parts)


def frontier_document(result: PlotResult, x: Axis, y: Axis, where: str):
    """What `plot` prints: the frontier's configurations (every point for a fit plot)."""
    from mbprof import __version__
    from mbprof.render.document import Document, Table

    shown = result.frontier if result.kind == "pareto" else result.points
    shown = shown.sort_values([x.column, y.column]).reset_index(drop=True)
    keys = ["label", "model", "width", "depth", "resolution", x.column, y.column]
    if (x.quality or y.quality) and "accuracy_source" in shown.columns:
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
