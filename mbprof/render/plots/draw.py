"""Drawing a figure of points and saving it byte for byte (matplotlib's Agg ``Figure`` API,
imported only to draw): units, a colour per family and a marker per model, plain log ticks,
the frontier or fit line, labels placed greedily so that they collide with nothing."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.frame.columns import Axis

if TYPE_CHECKING:
    import pandas as pd


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


def family_of(model: str) -> str:
    """The registry's family of ``model``; an import path is a "user model" (never imported)."""
    try:
        from mbprof.core.records import is_import_path
        from mbprof.models import get_model_info

        return "user model" if is_import_path(model) else get_model_info(model).family
    except Exception:  # noqa: BLE001 - user models and unknown names keep their own name
        return model


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


def model_styles(points: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """model -> (colour, marker, legend name): a colour per family, a marker per model, the
    legend naming the family, or the variant beside others of its family."""
    by_family: dict[str, list[str]] = {}
    for model, family in dict(zip(points["model"], points["family"], strict=True)).items():
        by_family.setdefault(family, []).append(model)  # families in order of appearance
    others: dict[str, str] = {}
    styles: dict[str, tuple[str, str, str]] = {}
    for family, models in by_family.items():
        squashed = family.lower().replace(" ", "").replace("-", "").replace("_", "")
        colour = next((c for p, c in FAMILY_COLOURS.items() if squashed.startswith(p)), None)
        if colour is None:
            colour = others.setdefault(family, OTHER_COLOURS[len(others) % len(OTHER_COLOURS)])
        for index, model in enumerate(sorted(models)):
            name = family if len(models) == 1 else variant_name(str(model), family)
            styles[model] = (colour, MARKERS[index % len(MARKERS)], name)
    return styles


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
    from matplotlib.ticker import FuncFormatter, LogLocator

    xs, ys = (
        (points[a.column].astype(float) * axis_scale(a, points[a.column])[0]).tolist()
        for a in (x, y)
    )
    # More room for many points: the labels keep their size, the plot grows.
    fig, ax = new_axes((8.0, 5.6) if len(points) <= 30 else (10.0, 7.0))
    styles = model_styles(points)
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
    import io

    from mbprof.core.files import write_atomic

    buffer = io.BytesIO()
    fmt = path.suffix.lower().lstrip(".")
    # No creation dates or version strings, so that a figure regenerates byte for byte.
    keys = {"png": ("Software",), "svg": ("Date", "Creator")}
    metadata = dict.fromkeys(keys.get(fmt, ("CreationDate", "Creator", "Producer")))
    fig.savefig(buffer, format=fmt, metadata=metadata)
    write_atomic(path, buffer.getvalue())


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
    """Offsets in points around a marker, nearest first: (dx, dy, ha, va, leader line)."""
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


def _boxes_along(start, end, px_per_pt: float, half: float, ends: bool):
    """Small boxes about every 3 points along a segment (``ends`` False: ends left free)."""
    import numpy as np

    (x0, y0), (x1, y1) = start, end
    steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / (3 * px_per_pt)))
    ts = np.linspace(0, 1, steps) if ends else [k / steps for k in range(1, steps)]
    centres = [(x0 + t * (x1 - x0), y0 + t * (y1 - y0)) for t in ts]
    return [(x - half, y - half, x + half, y + half) for x, y in centres]


def place_labels(fig, ax, xs, ys, labels, colours, rings, order, line_xy, fontsize: float) -> None:
    """Each label at the first nearby spot that covers nothing, else the least-covered."""
    import numpy as np
    from matplotlib.colors import to_rgb

    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    frame_box = ax.get_window_extent(renderer)
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
            weights = ((placed, 3), (others, 2), (lines, 0.5), (leaders, 0.5))
            score = sum(k * _overlap(box, boxes) for boxes, k in weights)
            score += 5 * (w * h - _overlap(box, frame_extent))
            segment = _boxes_along(pts[i], (ax_, ay_), px_per_pt, 1.0, ends=False) if leader else []
            if segment:
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
