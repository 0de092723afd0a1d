"""The report's figures (``plan.FIGURES``, as ``mbprof plot`` draws them) with ``pareto.md``,
and the phone section: published Pixel 1 latencies against each runtime here, one thread, one
scale factor k per series and scope (log k = mean(log published - log measured))."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.records import ModelSpec
from mbprof.core.units import format_value
from mbprof.frame.rows import cell, row_measures, spec_from_row
from mbprof.render.document import markdown_grid
from mbprof.report.plan import (
    FIGURES,
    ReproduceResult,
    config,
    fill,
    holds,
    lines,
    read_data,
    v1_v2,
    write_file,
)

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
    v1, v2 = v1_v2(data)
    if v1 is not None and v2 is not None and y.column in v1 and y.column in v2:
        values = {"v1_madds": v1["madds"] / 1e6, "v2_madds": v2["madds"] / 1e6}
        latency = fill("pareto", "latency", **values, v1_ms=v1[y.column], v2_ms=v2[y.column])
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


# What the API measures for each configuration, in the order the tables show them.
SERIES = ("eager", "onnxruntime", "onnxruntime int8", "executorch", "executorch int8")
MADDS = "MAdds alone (mbprof's count)"
MADDS_TFSLIM = "MAdds alone (TF-Slim's MACs column)"
SCOPES = {"grid": "the 22 MobileNetV2 checkpoints of the TF-Slim table"}
SCOPES["all"] = "every published phone latency"
FIGURE = "figures/phone_latency.png"
ORDER = (*SERIES, MADDS, MADDS_TFSLIM)  # the order of rows and columns


@dataclass(frozen=True)
class PublishedLatency:
    spec: ModelSpec
    ms: float
    device: str
    source: str
    in_grid: bool  # one of the TF-Slim grid's checkpoints


def published_latencies() -> list[PublishedLatency]:
    """Every phone latency ``accuracy.csv`` ships, in its order."""
    return [
        PublishedLatency(
            config(r["model"], r["width"], r["resolution"]),
            float(r["phone_latency_ms"]),
            r["phone_latency_device"],
            r["source"],
            r["source"] == "TF-Slim MobileNetV2 checkpoints",
        )
        for r in read_data("accuracy.csv")
        if r.get("phone_latency_ms")
    ]


def phone_configs() -> list[ModelSpec]:
    """The configurations that have a published phone latency, each once."""
    return list(dict.fromkeys(p.spec for p in published_latencies()))


@dataclass(frozen=True)
class Fit:
    """One series fitted on one scope: Spearman, log-log slope, median and largest |error|."""

    series: str
    scope: str
    points: int
    scale: float
    spearman: float
    slope: float
    median_error_pct: float
    max_error_pct: float


def fit(series: str, scope: str, pairs: Sequence[tuple[float, float]]) -> Fit:
    """``pairs`` of (measured, published), both > 0, at least three."""
    from mbprof.render.plots import correlation

    logs = [(math.log(m), math.log(p)) for m, p in pairs]
    scale = math.exp(statistics.mean(lp - lm for lm, lp in logs))
    errors = [abs(100.0 * (m * scale / p - 1.0)) for m, p in pairs]
    xs, ys = zip(*logs, strict=True)
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else math.nan
    _, spearman = correlation([m for m, _ in pairs], [p for _, p in pairs])
    return Fit(
        series, scope, len(pairs), scale, spearman, slope, statistics.median(errors), max(errors)
    )


def measured_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[ModelSpec, float]]:
    """Per series, each configuration's latency (ms) on a runtime, or its MAdds."""
    values: dict[str, dict[ModelSpec, float]] = {s: {} for s in (*SERIES, MADDS)}
    for spec in phone_configs():
        for row in (row for row in rows if row_measures(row, spec)):
            series, latency, madds = (cell(row, k) for k in ("series", "latency_ms", "madds"))
            if series in values and latency is not None and not cell(row, "error"):
                values[series][spec] = float(latency)
            if madds is not None:
                values[MADDS][spec] = float(madds)
    values[MADDS_TFSLIM] = {  # TF-Slim's own MACs column (millions, rounded) for its grid
        config(r["model"], r["width"], r["resolution"]): float(r["madds_m"]) * 1e6
        for r in read_data("tfslim_madds.csv")
    }
    return {series: values[series] for series in ORDER if values.get(series)}


def fits(values: Mapping[str, Mapping[ModelSpec, float]]) -> list[Fit]:
    """Every series on every scope where it has at least three points."""
    found = []
    for scope in SCOPES:
        published = [p for p in published_latencies() if scope == "all" or p.in_grid]
        for series, by_spec in values.items():
            pairs = [(by_spec[p.spec], p.ms) for p in published if p.spec in by_spec]
            if len(pairs) >= 3 and not (series == MADDS_TFSLIM and scope == "all"):
                found.append(fit(series, scope, pairs))
    return found


def best_runtime(found: Sequence[Fit], scope: str = "all") -> Fit | None:
    """The runtime series with the smallest median |error| on ``scope``."""
    runtimes = [f for f in found if f.scope == scope and f.series in SERIES]
    return min(runtimes, key=lambda f: (f.median_error_pct, f.max_error_pct), default=None)


def finding(found: Sequence[Fit]) -> str:
    """The measured answer to "which runtime here predicts a phone best", in one paragraph."""
    best = best_runtime(found)
    if best is None:
        return fill("phone", "none")
    madds = next((f for f in found if f.series == MADDS and f.scope == "all"), None)
    grid = best_runtime(found, "grid")
    grid = "" if grid is None else fill("phone", "grid", grid=grid)
    madds = "" if madds is None else fill("phone", "madds", madds=madds)
    return fill("phone", "best", best=best, grid=grid, madds=madds)


def per_value_rows(
    values: Mapping[str, Mapping[ModelSpec, float]], found: Sequence[Fit]
) -> list[dict[str, Any]]:
    """One row per (published value, series) with the scale of the fit on every value."""
    scales = {(f.scope, f.series): f.scale for f in found}
    rows = []
    for p in published_latencies():
        where = {"model": p.spec.model, "width": p.spec.width, "resolution": p.spec.res_label}
        where |= {"source": p.source, "phone_latency_device": p.device, "published_ms": p.ms}
        for series, by_spec in values.items():
            scale = scales.get(("all", series), scales.get(("grid", series)) if p.in_grid else None)
            if scale is None or (measured := by_spec.get(p.spec)) is None:
                continue
            unit = "madds" if series.startswith("MAdds") else "ms"
            row = {**where, "series": series, "measured": measured, "measured_unit": unit}
            row |= {"scale": scale, "predicted_ms": measured * scale}
            rows.append({**row, "error_pct": 100.0 * (measured * scale / p.ms - 1.0)})
    return rows


def _summary_table(found: Sequence[Fit], scope: str) -> str:
    rows = [
        [f.series, str(f.points), f"{f.scale:.3g}", f"{f.spearman:.3f}", f"{f.slope:.2f}"]
        + [f"{f.median_error_pct:.1f}%", f"{f.max_error_pct:.1f}%"]
        for f in found
        if f.scope == scope
    ]
    headers = ["Series", "Points", "Scale k", "Spearman", "Log-log slope", "Median |error|"]
    return markdown_grid([*headers, "Largest |error|"], rows, [False] + [True] * 6)


def _value_table(rows: Sequence[Mapping[str, Any]], series: Sequence[str]) -> str:
    cells: dict[tuple[str, str, float], dict[str, str]] = {}
    for r in rows:
        name = f"{r['model']} {format_value(r['width'], 'float')}@{r['resolution']}"
        key = (name, r["source"], r["published_ms"])
        cells.setdefault(key, {})[r["series"]] = f"{r['predicted_ms']:.1f} ({r['error_pct']:+.0f}%)"
    table = [[*map(str, key[:2]), f"{key[2]:g}", *(c.get(s, "-") for s in series)]
             for key, c in cells.items()]  # fmt: skip
    headers = ["Configuration", "Source", "Published (ms)", *series]
    return markdown_grid(headers, table, [False, False, True] + [True] * len(series))


def write_phone(
    stage: Path,
    rows: Sequence[Mapping[str, Any]],
    result: ReproduceResult,
    environment: str = "",
    missing: Sequence[str] = (),
) -> list[Fit]:
    """``phone.md``, ``phone.csv`` and the figure from the measured ``rows``."""
    import pandas as pd

    from mbprof.render.plots.roofline import draw_phone

    values = measured_values(rows)
    found = fits(values)
    per_value = per_value_rows(values, found)
    series = [s for s in ORDER if s in {r["series"] for r in per_value}]
    failed = [
        f"- {spec_from_row(r).label} on {cell(r, 'series')}: {cell(r, 'error')}"
        for r in rows
        if cell(r, "error")
    ]
    values = {"environment": environment.rstrip("."), "finding": finding(found), "figure": FIGURE}
    values["missing"] = fill("phone", "missing", missing="; ".join(missing)) if missing else ""
    values["failed"] = fill("phone", "failed", failed=lines(failed)) if failed else ""
    values["scopes"] = lines(
        fill("phone", "scope", what=what, table=_summary_table(found, scope))
        for scope, what in SCOPES.items()
    )
    values["values"] = _value_table(per_value, series)
    write_file(stage, result, "phone.md", fill("phone", "document", **values))
    write_file(stage, result, "phone.csv", pd.DataFrame(per_value))
    (stage / FIGURE).parent.mkdir(parents=True, exist_ok=True)
    draw_phone(per_value, stage / FIGURE)
    result.files.append((FIGURE, holds(FIGURE)))
    result.findings.append(values["finding"])
    return found
