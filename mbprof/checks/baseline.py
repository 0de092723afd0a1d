"""Baselines: a saved comparison frame as a regression guard.

A baseline is the JSON document that ``mbprof compare --json FILE`` writes (its first
table, one row per configuration, with the columns of ``mbprof.frame.columns``), or the same
frame as CSV. Each figure in it becomes a limit on a fresh measurement of the same
configuration under the same settings, with a per-metric tolerance: the fresh figure
passes while ``fresh <= saved x (1 + tolerance)``. Pure: no measuring here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mbprof.checks.budgets import Budget, Limit
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_kwargs, parse_resolution
from mbprof.core.records import ModelSpec
from mbprof.core.settings import parse_chunks, parse_mem_dtype
from mbprof.core.units import parse_percent

# Metric group -> (frame columns, default tolerance in percent). Counts are exact and
# deterministic, so any growth is a change to the model; activation memory is computed,
# not sampled, so it is exact too; latency is sampled on a shared machine.
TOLERANCE_GROUPS: dict[str, tuple[tuple[str, ...], float]] = {
    "madds": (("madds",), 0.0),
    "params": (("params",), 0.0),
    "memory": (("peak_act_bytes", "peak_act_bytes_efficient"), 0.0),
    "latency": (("latency_ms",), 15.0),
}
COLUMN_KEYS = {
    "madds": "max_madds",
    "params": "max_params",
    "peak_act_bytes": "max_peak_memory",
    "peak_act_bytes_efficient": "max_peak_memory",
    "latency_ms": "max_latency",
}


def default_tolerances() -> dict[str, float]:
    """Frame column -> tolerance in percent."""
    return {col: pct for cols, pct in TOLERANCE_GROUPS.values() for col in cols}


def parse_tolerances(items: Iterable[str] | None, option: str = "--tolerance") -> dict[str, float]:
    """['latency=20%', 'madds=1%'] -> the defaults with those groups changed."""
    tolerances = default_tolerances()
    for item in items or []:
        group, sep, value = item.partition("=")
        group = group.strip()
        if not sep or group not in TOLERANCE_GROUPS:
            raise MbprofError(
                f"{option}: {item!r} is not GROUP=PERCENT with GROUP one of "
                f"{', '.join(TOLERANCE_GROUPS)} (e.g. latency=20%)"
            )
        pct = parse_percent(value.strip(), f"{option} {group}")
        for col in TOLERANCE_GROUPS[group][0]:
            tolerances[col] = pct
    return tolerances


def _get(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return value


def spec_from_row(row: Mapping[str, Any], where: str) -> ModelSpec:
    """The configuration a frame row measured (model, width, depth, size, classes, args).
    Data only: the model stays a name, checked (and an import path refused unless allowed)
    by ``mbprof.checks.measuring.check_specs`` before anything is imported."""
    model = _get(row, "model")
    if not isinstance(model, str):
        raise MbprofError(f"{where}: no 'model' column; is this an mbprof compare result?")
    try:
        height, width = _get(row, "input_h"), _get(row, "input_w")
        if height is not None and width is not None:
            resolution = (int(height), int(width))
        elif _get(row, "resolution") is not None:
            resolution = parse_resolution(str(_get(row, "resolution")), "resolution")
        else:
            raise MbprofError("no 'resolution' (or 'input_h' and 'input_w') column")
        args = _get(row, "args")
        return ModelSpec(
            model=model,
            width=float(_get(row, "width") or 1.0),
            depth=float(_get(row, "depth") or 1.0),
            resolution=resolution,
            num_classes=int(_get(row, "num_classes") or 1000),
            # Literal values only (numbers, true/false, none, else the text itself).
            kwargs=parse_kwargs(str(args).split(), "args") if args else (),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, MbprofError):
            raise MbprofError(f"{where}: {exc}") from None
        raise MbprofError(f"{where}: a configuration column is not a number ({exc})") from None


def _memory_settings(row: Mapping[str, Any], mode: str) -> tuple[tuple[str, Any], ...]:
    chunks = _get(row, "mem_chunks")
    return (
        ("dtype", parse_mem_dtype(_get(row, "mem_dtype") or "fp16", "mem_dtype")),
        ("mode", mode),
        ("chunks", parse_chunks(None if chunks is None else str(chunks), "mem_chunks")),
    )


def _latency_settings(row: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    def integer(key: str) -> int | None:
        value = _get(row, key)
        return None if value is None else int(value)

    memory_format = _get(row, "memory_format")
    return (
        ("device", _get(row, "device") or "cpu"),
        ("backend", _get(row, "backend") or "eager"),
        ("threads", integer("threads")),
        ("batch", integer("batch") or 1),
        ("dtype", _get(row, "dtype") or "fp32"),
        ("channels_last", memory_format == "channels_last"),
        ("fuse_bn", bool(_get(row, "fuse_bn") or False)),
        ("min_time_ms", None),
        ("warmup", None),
    )


def baseline_budgets(
    rows: Iterable[Mapping[str, Any]], source: str, tolerances: Mapping[str, float] | None = None
) -> list[Budget]:
    """One budget per baseline row that has figures: each figure becomes a limit equal to
    the saved value, with the tolerance of its metric. Rows marked with an ``error`` and
    without figures are skipped (there is nothing to guard)."""
    tolerances = dict(default_tolerances() if tolerances is None else tolerances)
    budgets = []
    for number, row in enumerate(rows, start=1):
        where = f"{source} row {number}"
        spec = spec_from_row(row, where)
        try:
            limits = _row_limits(row, where, tolerances)
        except MbprofError as exc:
            if str(exc).startswith(where):
                raise
            raise MbprofError(f"{where}: {exc}") from None
        if limits:
            budgets.append(Budget(spec, tuple(limits), source, None, "", number, from_rows=True))
    if not budgets:
        raise MbprofError(f"{source}: no configuration with figures to guard")
    return budgets


def _row_limits(row: Mapping[str, Any], where: str, tolerances: Mapping[str, float]) -> list:
    limits = []
    for column, key in COLUMN_KEYS.items():
        value = _get(row, column)
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MbprofError(f"{where}: {column} {value!r} is not a number") from None
        if column != "latency_ms" and value.is_integer():
            value = int(value)  # counts and bytes stay integers
        if key == "max_peak_memory":
            mode = "efficient" if column.endswith("efficient") else "materialized"
            settings = _memory_settings(row, mode)
        elif key == "max_latency":
            settings = _latency_settings(row)
        else:
            settings = ()
        limits.append(
            Limit(
                key,
                value,
                "baseline",
                None,
                tolerances.get(column, 0.0),
                settings,
                origin="baseline",
            )
        )
    return limits
