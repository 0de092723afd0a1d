"""Measure what budgets and baselines ask for: one row per (configuration, settings).

The rows have the columns of a comparison frame (``mbprof.columns``), so that the pure
checks in ``mbprof.budgets`` read measured rows and saved frames alike. Each
configuration is counted once however many limits it has.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mbprof.budgets import Budget, BudgetFileError, Limit
from mbprof.errors import MbprofError, UnknownModelError
from mbprof.records import ModelSpec

Settings = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Request:
    """One measurement: a configuration, and the memory and latency settings (or None)."""

    spec: ModelSpec
    memory: Settings | None = None  # dtype, chunks
    latency: Settings | None = None  # device, backend, threads, batch, dtype, ...


def _memory_key(limit: Limit) -> Settings:
    return (("dtype", limit.setting("dtype")), ("chunks", limit.setting("chunks")))


def requests_for(budgets: Iterable[Budget]) -> list[Request]:
    """The measurements that cover every limit, without repeats. Memory and latency
    settings of one configuration are paired up, so that a budget with one of each is a
    single measurement."""
    requests: dict[Request, None] = {}
    for budget in budgets:
        memory = [_memory_key(lim) for lim in budget.limits if lim.key == "max_peak_memory"]
        latency = [lim.settings for lim in budget.limits if lim.key == "max_latency"]
        memory, latency = list(dict.fromkeys(memory)), list(dict.fromkeys(latency))
        pairs = list(itertools.zip_longest(memory, latency)) or [(None, None)]
        for mem, lat in pairs:
            requests.setdefault(Request(budget.spec, mem, lat), None)
    return list(requests)


_KEY_OF_MESSAGE = (
    ("width", "width"),
    ("depth", "depth"),
    ("resolution", "resolution"),
    ("classes", "classes"),
    ("argument", "args"),
)


def check_specs(budgets: Sequence[Budget]) -> list[Budget]:
    """Each budget with its configuration checked by the model registry (names, width and
    resolution ranges, builder arguments), before anything is measured. A refusal names
    the file and line of the budget."""
    from mbprof.api import make_spec

    checked = []
    for budget in budgets:
        spec = budget.spec
        try:
            make_spec(
                spec.model,
                spec.width,
                spec.depth,
                spec.resolution,
                spec.num_classes,
                spec.kwargs,
            )
        except MbprofError as exc:
            if budget.line is None:  # a baseline row
                raise MbprofError(f"{budget.source} row {budget.index}: {exc}") from None
            key = "model" if isinstance(exc, UnknownModelError) else ""
            for word, name in _KEY_OF_MESSAGE:
                if not key and word in str(exc):
                    key = name
            raise BudgetFileError(
                f"budget {budget.index}, {key or 'model'}: {exc}",
                budget.source,
                budget.line_of(key),
            ) from None
        checked.append(budget)
    return checked


def _identity(spec: ModelSpec) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": spec.model,
        "width": spec.width,
        "depth": spec.depth,
        "resolution": spec.res_label,
        "input_h": spec.resolution[0],
        "input_w": spec.resolution[1],
        "num_classes": spec.num_classes,
    }
    if spec.kwargs:
        row["args"] = " ".join(f"{k}={v}" for k, v in spec.kwargs)
    return row


def _memory_columns(spec: ModelSpec, settings: Settings) -> dict[str, Any]:
    """Peak activation memory, materialized and memory-efficient (mbprof.analysis.memory)."""
    from mbprof.api import memory_columns, memory_spec

    wanted = dict(settings)
    return memory_columns(memory_spec(spec, dtype=wanted["dtype"], chunks=wanted["chunks"]))


def _latency_columns(spec: ModelSpec, settings: Settings) -> dict[str, Any]:
    raise MbprofError(
        "this mbprof cannot measure latency yet: remove max_latency from the budget file"
    )


def measure(
    requests: Sequence[Request], on_start: Callable[[ModelSpec], None] | None = None
) -> dict[Request, dict[str, Any]]:
    """One row per request. Bad settings (``MbprofError``) stop everything; a failure
    of one configuration (a model that cannot run) is written in its row's ``error``
    column, and the limits that needed its figures are reported as errors."""
    from mbprof.api import profile_row, profile_spec

    counted: dict[ModelSpec, dict[str, Any]] = {}
    rows: dict[Request, dict[str, Any]] = {}
    for request in requests:
        spec = request.spec
        if on_start is not None:
            on_start(spec)
        row = _identity(spec)
        try:
            if spec not in counted:
                counted[spec] = profile_row(profile_spec(spec, memory=False))
            row.update(counted[spec])
            if request.memory is not None:
                row.update(_memory_columns(spec, request.memory))
            if request.latency is not None:
                row.update(_latency_columns(spec, request.latency))
        except MbprofError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded in the row, the run goes on
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows[request] = row
    return rows
