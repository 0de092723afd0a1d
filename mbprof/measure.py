"""Measure what budgets and baselines ask for: one row per (configuration, settings).

The rows have the columns of a comparison frame (``mbprof.columns``), so that the pure
checks in ``mbprof.budgets`` read measured rows and saved frames alike. Each
configuration is counted once however many limits it has.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mbprof.budgets import LATENCY_IDENTITY, Budget, BudgetFileError, Limit
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


def _latency_kwargs(settings: Settings) -> dict[str, Any]:
    wanted = dict(settings)
    kwargs = {key: wanted[key] for key in LATENCY_IDENTITY}
    if wanted.get("min_time_ms") is not None:
        kwargs["min_time_s"] = wanted["min_time_ms"] / 1e3
    if wanted.get("warmup") is not None:
        kwargs["warmup"] = wanted["warmup"]
    return kwargs


def resolve_latency(budgets: Sequence[Budget]) -> dict[Settings, Any]:
    """Latency settings of every budget, checked for this machine (a GPU that is not
    there, a backend that is not installed) before anything is measured, and resolved
    ("auto" device, torch's thread count). A refusal names the file and line."""
    from mbprof.api import make_latency_settings

    resolved: dict[Settings, Any] = {}
    for budget in budgets:
        for limit in budget.limits:
            if limit.key != "max_latency" or limit.settings in resolved:
                continue
            try:
                resolved[limit.settings] = make_latency_settings(**_latency_kwargs(limit.settings))
            except MbprofError as exc:
                if budget.line is None:  # a baseline row
                    raise MbprofError(f"{budget.source} row {budget.index}: {exc}") from None
                raise BudgetFileError(
                    f"budget {budget.index}, max_latency: {exc}", budget.source, limit.line
                ) from None
    return resolved


def _failure(exc: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _latency_columns(spec: ModelSpec, settings: Any, madds: int | None) -> dict[str, Any]:
    """Latency and its environment (mbprof.analysis.latency); a run that fails (out of
    memory, an export error) leaves ``error`` and the settings it was asked for."""
    from mbprof.api import bench_spec

    try:
        return bench_spec(spec, settings, madds=madds).timing.as_row()
    except MbprofError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the row; the others go on
        return {
            "device": settings.device,
            "backend": settings.backend,
            "dtype": settings.dtype,
            "batch": settings.batch,
            "threads": settings.threads,
            "memory_format": settings.memory_format,
            "fuse_bn": settings.fuse_bn,
            "error": _failure(exc),
        }


def measure(
    requests: Sequence[Request],
    on_start: Callable[[ModelSpec], None] | None = None,
    latency: Mapping[Settings, Any] | None = None,
) -> dict[Request, dict[str, Any]]:
    """One row per request. ``latency`` maps each request's latency settings to settings
    resolved by ``resolve_latency`` (resolved here when not given). Bad settings
    (``MbprofError``) stop everything; a failure of one configuration (a model that
    cannot run) is written in its row's ``error`` column, and the limits that needed its
    figures are reported as errors."""
    from mbprof.api import make_latency_settings, profile_row, profile_spec

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
                settings = (latency or {}).get(request.latency) or make_latency_settings(
                    **_latency_kwargs(request.latency)
                )
                row.update(_latency_columns(spec, settings, row.get("madds")))
        except MbprofError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded in the row, the run goes on
            row["error"] = _failure(exc)
        rows[request] = row
    return rows
