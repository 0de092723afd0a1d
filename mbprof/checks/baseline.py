"""Baselines: each figure of a saved comparison frame (``compare --json``) a limit on a fresh
measurement, passing while ``fresh <= saved x (1 + tolerance)``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mbprof.checks.limits import Budget, Limit, latency_settings
from mbprof.core.errors import MbprofError
from mbprof.core.settings import parse_chunks, parse_mem_dtype
from mbprof.core.units import parse_percent
from mbprof.frame.rows import cell, spec_from_row

# Metric group -> (frame columns, default tolerance in percent). Counts are exact and
# deterministic, so any growth is a change to the model; activation memory is computed,
# not sampled, so it is exact too; latency is sampled on a shared machine.
TOLERANCE_GROUPS: dict[str, tuple[tuple[str, ...], float]] = {
    "madds": (("madds",), 0.0),
    "params": (("params",), 0.0),
    "memory": (("peak_act_bytes", "peak_act_bytes_efficient"), 0.0),
    "latency": (("latency_ms",), 15.0),
}
COLUMN_KEYS = {"madds": "max_madds", "params": "max_params", "peak_act_bytes": "max_peak_memory"}
COLUMN_KEYS |= {"peak_act_bytes_efficient": "max_peak_memory", "latency_ms": "max_latency"}


def default_tolerances() -> dict[str, float]:
    return {col: pct for cols, pct in TOLERANCE_GROUPS.values() for col in cols}


def tolerances_for(
    groups: Mapping[str, float | str] | None, what: str = "tolerances"
) -> dict[str, float]:
    """{'latency': 20.0, 'madds': '1%'} -> frame column -> tolerance: the defaults, changed."""
    tolerances = default_tolerances()
    for group, value in (groups or {}).items():
        if group not in TOLERANCE_GROUPS:
            raise MbprofError(
                f"{what}: {group!r} is not a metric group; use one of "
                f"{', '.join(TOLERANCE_GROUPS)}",
                field=what,
            )
        plain = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, str):
            value = parse_percent(value, f"{what} {group}")
        elif not (plain and math.isfinite(value) and value >= 0):
            why = "is not a percentage; give a number >= 0 or '10%'"
            raise MbprofError(f"{what} {group} {value!r} {why}")
        tolerances |= dict.fromkeys(TOLERANCE_GROUPS[group][0], float(value))
    return tolerances


def parse_tolerance_items(
    items: Iterable[str] | None, option: str = "--tolerance"
) -> dict[str, float]:
    """['latency=20%', 'madds=1%'] -> {'latency': 20.0, 'madds': 1.0}."""
    groups: dict[str, float] = {}
    for item in items or []:
        group, sep, value = item.partition("=")
        group = group.strip()
        if not sep or group not in TOLERANCE_GROUPS:
            raise MbprofError(
                f"{option}: {item!r} is not GROUP=PERCENT with GROUP one of "
                f"{', '.join(TOLERANCE_GROUPS)} (e.g. latency=20%)"
            )
        groups[group] = parse_percent(value.strip(), f"{option} {group}")
    return groups


def baseline_budgets(
    rows: Iterable[Mapping[str, Any]], source: str, tolerances: Mapping[str, float] | None = None
) -> list[Budget]:
    """One budget per baseline row that has figures, each figure a limit."""
    tolerances = dict(default_tolerances() if tolerances is None else tolerances)
    budgets = []
    for number, row in enumerate(rows, start=1):
        where = f"{source} row {number}"
        spec = spec_from_row(row, where)
        try:
            limits = _row_limits(row, tolerances)
        except MbprofError as exc:
            raise MbprofError(f"{where}: {exc}") from None
        if limits:
            budgets.append(Budget(spec, tuple(limits), source, None, "", number, from_rows=True))
    if not budgets:
        raise MbprofError(f"{source}: no configuration with figures to guard")
    return budgets


def _row_limits(row: Mapping[str, Any], tolerances: Mapping[str, float]) -> list:
    limits = []
    for column, key in COLUMN_KEYS.items():
        if (value := cell(row, column)) is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MbprofError(f"{column} {value!r} is not a number") from None
        if column != "latency_ms" and value.is_integer():
            value = int(value)  # counts and bytes stay integers
        settings: tuple = ()
        if key == "max_peak_memory":
            chunks = cell(row, "mem_chunks")
            settings = (
                ("dtype", parse_mem_dtype(cell(row, "mem_dtype") or "fp16", "mem_dtype")),
                ("mode", "efficient" if column.endswith("efficient") else "materialized"),
                ("chunks", parse_chunks(None if chunks is None else str(chunks), "mem_chunks")),
            )
        elif key == "max_latency":
            threads = cell(row, "threads")
            settings = latency_settings(
                **{k: cell(row, k) or None for k in ("device", "backend", "dtype", "quantize")},
                threads=None if threads is None else int(threads),
                batch=int(cell(row, "batch") or 1),
                channels_last=cell(row, "memory_format") == "channels_last",
                fuse_bn=bool(cell(row, "fuse_bn")),
            )
        tolerance = tolerances.get(column, 0.0)
        limits.append(Limit(key, value, None, tolerance, settings, origin="baseline"))
    return limits
