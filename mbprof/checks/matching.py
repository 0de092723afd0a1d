"""Limits judged against measured rows (fresh or saved, read alike), and the other way: the
measurements budgets ask for, one request per (configuration, memory, latency settings)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mbprof.checks.limits import (
    ERROR,
    LATENCY_IDENTITY,
    RUN_METRICS,
    UNSTABLE,
    Budget,
    BudgetFile,
    Limit,
    Result,
    Row,
    judge,
)
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.settings import CHUNKS_PER_CHANNEL
from mbprof.frame.rows import cell, row_measures

Settings = tuple[tuple[str, Any], ...]


def same_setting(have: Any, wanted: Any) -> bool:
    """Whether a row's setting is the one a limit wants (a CSV may give threads as 2.0)."""
    if isinstance(wanted, bool) or isinstance(have, bool):
        return bool(have) == wanted
    try:
        return str(have) == str(wanted) or float(have) == float(wanted)
    except (TypeError, ValueError):
        return False


def settings_match(row: Row, limit: Limit) -> bool:
    """Whether ``row`` was measured under the limit's settings (one it lacks contradicts none)."""
    if limit.key == "max_peak_memory":
        if cell(row, "mem_dtype") not in (None, limit.setting("dtype")):
            return False
        if limit.setting("mode") != "efficient":
            return True  # the materialized peak does not depend on T
        have = cell(row, "mem_chunks")
        return have is None or same_setting(have, limit.setting("chunks") or CHUNKS_PER_CHANNEL)
    for name in LATENCY_IDENTITY if limit.key in RUN_METRICS else ():
        wanted, have = limit.setting(name), cell(row, name)
        if name == "channels_last" and "memory_format" in row:
            have = None if (form := cell(row, "memory_format")) is None else form == "channels_last"
        unsaid = wanted is None or have is None or (name == "device" and wanted == "auto")
        if not unsaid and not same_setting(have, wanted):
            return False
    return True


def find_row(rows: Iterable[Row], spec: ModelSpec, limit: Limit) -> Row | None:
    """The first row that measured ``spec`` under the limit's settings (or its error)."""
    found = [row for row in rows if row_measures(row, spec) and settings_match(row, limit)]
    measured = [row for row in found if cell(row, limit.column) is not None]
    return next(iter(measured or [row for row in found if cell(row, "error")]), None)


def covering_rows(budgets: Iterable[Budget], rows: list[Row]) -> list[Row]:
    """The rows that some budget's limits read, each once."""
    found = [find_row(rows, budget.spec, limit) for budget in budgets for limit in budget.limits]
    return list({id(row): row for row in found if row is not None}.values())


def check_rows(budgets: BudgetFile | Iterable[Budget], rows: Any) -> list[Result]:
    """Every limit of ``budgets`` against the measured ``rows`` (dicts or a frame)."""
    rows = rows.to_dict(orient="records") if hasattr(rows, "to_dict") else list(rows)
    results = []
    for budget in budgets.budgets if isinstance(budgets, BudgetFile) else budgets:
        for limit in budget.limits:
            row = find_row(rows, budget.spec, limit)
            if row is None:
                cond = f" [{limit.conditions}]" if limit.conditions else ""
                where = f"{budget.source}:{limit.line}: " if limit.line else f"{budget.source}: "
                raise MbprofError(
                    f"{where}no measurement of {limit.column} for {budget.spec.label}{cond}; "
                    "the results do not cover this budget"
                )
            measured = cell(row, limit.column)
            if measured is None:
                results.append(Result(budget, limit, None, ERROR, str(cell(row, "error"))))
            elif limit.key == "max_latency" and cell(row, "latency_verdict") == UNSTABLE:
                why = str(cell(row, "latency_reasons", ""))
                results.append(Result(budget, limit, measured, UNSTABLE, reasons=why))
            else:
                results.append(Result(budget, limit, measured, judge(limit, measured)))
    return results


@dataclass(frozen=True)
class Request:
    """One measurement: a configuration, memory and latency settings (or None)."""

    spec: ModelSpec
    memory: Settings | None = None  # dtype, chunks
    latency: Settings | None = None  # device, backend, threads, batch, dtype, ...


def requests_for(budgets: Iterable[Budget]) -> list[Request]:
    """The measurements that cover every limit, memory and latency settings paired up."""
    requests: dict[Request, None] = {}
    for budget in budgets:
        memory = [lim for lim in budget.limits if lim.key == "max_peak_memory"]
        memory = [(("dtype", m.setting("dtype")), ("chunks", m.setting("chunks"))) for m in memory]
        latency = [lim.settings for lim in budget.limits if lim.key in RUN_METRICS]
        memory, latency = list(dict.fromkeys(memory)), list(dict.fromkeys(latency))
        for mem, lat in list(itertools.zip_longest(memory, latency)) or [(None, None)]:
            requests.setdefault(Request(budget.spec, mem, lat), None)
    return list(requests)


def by_configuration(requests: Iterable[Request]) -> dict[ModelSpec, list[Request]]:
    """The requests of each configuration: one build and one count each."""
    grouped: dict[ModelSpec, list[Request]] = {}
    for request in requests:
        grouped.setdefault(request.spec, []).append(request)
    return grouped


def latency_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs = {k: v for k, v in settings if k in LATENCY_IDENTITY or k == "warmup" and v is not None}
    ms = dict(settings).get("min_time_ms")
    return kwargs if ms is None else kwargs | {"min_time_s": ms / 1e3}
