"""The phone section of ``reproduce``: published Pixel 1 latencies against what each runtime
measures here, one thread. Per series and scope one scale factor k is fitted in log space
(log k = mean(log published - log measured)); errors are measured x k / published - 1."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.units import format_value
from mbprof.frame.rows import cell, row_measures, spec_from_row
from mbprof.render.document import markdown_grid
from mbprof.report.folder import ReproduceResult, write_file
from mbprof.report.plan import config, read_data
from mbprof.report.text import fill, lines

# What the API measures for each configuration, in the order the tables show them.
SERIES = ("eager", "onnxruntime", "onnxruntime int8", "executorch", "executorch int8")
MADDS = "MAdds alone (mbprof's count)"
MADDS_TFSLIM = "MAdds alone (TF-Slim's MACs column)"
GRID_SOURCE = "TF-Slim MobileNetV2 checkpoints"
SCOPES = {
    "grid": "the 22 MobileNetV2 checkpoints of the TF-Slim table",
    "all": "every published phone latency",
}
FIGURE = "figures/phone_latency.png"
ORDER = (*SERIES, MADDS, MADDS_TFSLIM)  # the order of rows and columns


@dataclass(frozen=True)
class PublishedLatency:
    spec: ModelSpec
    ms: float
    device: str
    source: str

    @property
    def in_grid(self) -> bool:
        return self.source == GRID_SOURCE


def published_latencies() -> list[PublishedLatency]:
    """Every phone latency ``accuracy.csv`` ships, in its order."""
    return [
        PublishedLatency(
            config(r["model"], r["width"], r["resolution"]),
            float(r["phone_latency_ms"]),
            r["phone_latency_device"],
            r["source"],
        )
        for r in read_data("accuracy.csv")
        if r.get("phone_latency_ms")
    ]


def phone_configs() -> list[ModelSpec]:
    """The configurations that have a published phone latency, each once."""
    return list(dict.fromkeys(p.spec for p in published_latencies()))


def tfslim_madds() -> dict[ModelSpec, float]:
    """TF-Slim's own MACs column (millions, rounded) for the MobileNetV2 grid."""
    return {
        config(r["model"], r["width"], r["resolution"]): float(r["madds_m"]) * 1e6
        for r in read_data("tfslim_madds.csv")
    }


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
    mean_x = statistics.mean(lm for lm, _ in logs)
    mean_y = statistics.mean(lp for _, lp in logs)
    spread = sum((lm - mean_x) ** 2 for lm, _ in logs)
    slope = sum((lm - mean_x) * (lp - mean_y) for lm, lp in logs) / spread if spread else math.nan
    _, spearman = correlation([m for m, _ in pairs], [p for _, p in pairs])
    return Fit(
        series, scope, len(pairs), scale, spearman, slope, statistics.median(errors), max(errors)
    )


def measured_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[ModelSpec, float]]:
    """Per series, each configuration's latency (ms) on a runtime, or its MAdds."""
    values: dict[str, dict[ModelSpec, float]] = {s: {} for s in (*SERIES, MADDS)}
    for spec in phone_configs():
        for row in rows:
            if not row_measures(row, spec):
                continue
            series, latency, madds = (cell(row, k) for k in ("series", "latency_ms", "madds"))
            if series in values and latency is not None and not cell(row, "error"):
                values[series][spec] = float(latency)
            if madds is not None:
                values[MADDS][spec] = float(madds)
    values[MADDS_TFSLIM] = tfslim_madds()
    return {series: values[series] for series in ORDER if values.get(series)}


def fits(values: Mapping[str, Mapping[ModelSpec, float]]) -> list[Fit]:
    """Every series on every scope where it has at least three points."""
    published = published_latencies()
    found = []
    for scope in SCOPES:
        for series, by_spec in values.items():
            pairs = [
                (by_spec[p.spec], p.ms)
                for p in published
                if p.spec in by_spec and (scope == "all" or p.in_grid)
            ]
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
    scales = {f.series: f.scale for f in found if f.scope == "all"}
    grid_scales = {f.series: f.scale for f in found if f.scope == "grid"}
    rows = []
    for p in published_latencies():
        for series, by_spec in values.items():
            scale = scales.get(series, grid_scales.get(series) if p.in_grid else None)
            measured = by_spec.get(p.spec)
            if scale is None or measured is None:
                continue
            rows.append(
                {
                    "model": p.spec.model,
                    "width": p.spec.width,
                    "resolution": p.spec.res_label,
                    "source": p.source,
                    "phone_latency_device": p.device,
                    "published_ms": p.ms,
                    "series": series,
                    "measured": measured,
                    "measured_unit": "madds" if series.startswith("MAdds") else "ms",
                    "scale": scale,
                    "predicted_ms": measured * scale,
                    "error_pct": 100.0 * (measured * scale / p.ms - 1.0),
                }
            )
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


def failures(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """'configuration on series: error' for each measured row that has an error."""
    found = []
    for row in rows:
        error = cell(row, "error")
        if error:
            try:
                label = spec_from_row(row).label
            except MbprofError:
                label = str(cell(row, "model"))
            found.append(f"{label} on {cell(row, 'series')}: {error}")
    return found


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
    from mbprof.report.folder import csv_text

    values = measured_values(rows)
    found = fits(values)
    per_value = per_value_rows(values, found)
    series = [s for s in ORDER if s in {r["series"] for r in per_value}]
    failed = failures(rows)
    text = fill(
        "phone",
        "document",
        environment=environment.rstrip("."),
        finding=finding(found),
        scopes=lines(
            fill("phone", "scope", what=what, table=_summary_table(found, scope))
            for scope, what in SCOPES.items()
        ),
        values=_value_table([r for r in per_value if r["series"] in series], series),
        figure=FIGURE,
        missing=fill("phone", "missing", missing="; ".join(missing)) if missing else "",
        failed=fill("phone", "failed", failed=lines(f"- {t}" for t in failed)) if failed else "",
    )
    write_file(stage, "phone.md", text, result, "Phone latency predicted from this machine")
    what = "Every published phone latency against each series, scaled (phone.md explains)"
    write_file(stage, "phone.csv", csv_text(pd.DataFrame(per_value)), result, what)
    (stage / FIGURE).parent.mkdir(parents=True, exist_ok=True)
    draw_phone(per_value, stage / FIGURE)
    result.files.append((FIGURE, "Measured (scaled) against published phone latency"))
    result.findings.append(finding(found))
    return found
