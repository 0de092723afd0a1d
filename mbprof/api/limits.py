"""The measuring that limits ask for, before and while ``check`` judges them: every
configuration checked by the model registry, every latency setting resolved for this
machine (both before anything is measured, a refusal naming the file and line), then one
row per request, each configuration built and counted once (``measure_rows``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mbprof.api.inputs import make_latency_settings, make_spec
from mbprof.api.single import measure_rows
from mbprof.checks.file_lines import BudgetFileError
from mbprof.checks.imports import import_refusal, parse_allow_import, refuse_imports
from mbprof.checks.limits import RUN_METRICS, Budget
from mbprof.checks.matching import Request, Settings, by_configuration, latency_kwargs
from mbprof.core.errors import MbprofError, UnknownModelError, UserCodeExit
from mbprof.core.records import ModelSpec
from mbprof.core.settings import MemorySettings, ResolvedLatency

_KEY_OF_MESSAGE = (
    ("width", "width"),
    ("depth", "depth"),
    ("resolution", "resolution"),
    ("classes", "classes"),
    ("argument", "args"),
)


def check_specs(budgets: Sequence[Budget], allow_import: Iterable[str] = ()) -> list[Budget]:
    """Each budget with its configuration checked by the model registry (names, width and
    resolution ranges, builder arguments), before anything is measured. A refusal names
    the file and line of the budget. Import paths are refused first, for every budget,
    unless their module is in ``allow_import`` (``"*"``: any): nothing is imported before."""
    refuse_imports(budgets, allow_import)
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
            key = "model" if isinstance(exc, UnknownModelError) else ""
            for word, name in _KEY_OF_MESSAGE:
                if not key and word in str(exc):
                    key = name
            raise budget.error(str(exc), key or "model") from None
        checked.append(budget)
    return checked


def resolve_latency_limits(budgets: Sequence[Budget]) -> dict[Settings, ResolvedLatency]:
    """Latency settings of every budget, checked for this machine (a GPU that is not
    there, a backend that is not installed) before anything is measured, and resolved
    ("auto" device, torch's thread count), once each. A refusal names the file and line."""
    resolved: dict[Settings, Any] = {}
    for budget in budgets:
        for limit in budget.limits:
            if limit.key not in RUN_METRICS or limit.settings in resolved:
                continue
            try:
                resolved[limit.settings] = make_latency_settings(**latency_kwargs(limit.settings))
            except MbprofError as exc:
                if budget.from_rows:
                    raise MbprofError(f"{budget.source} row {budget.index}: {exc}") from None
                raise BudgetFileError(
                    f"budget {budget.index}, {limit.key}: {exc}", budget.source, limit.line
                ) from None
    return resolved


def measure_requests(
    requests: Sequence[Request],
    on_start: Callable[[ModelSpec], None] | None = None,
    latency: Mapping[Settings, ResolvedLatency] | None = None,
    allow_import: Iterable[str] = (),
    on_phase: Callable[[str], None] | None = None,
    on_done: Callable[[list[dict[str, Any]]], None] | None = None,
    engine: str = "fvcore",
) -> dict[Request, dict[str, Any]]:
    """One row per request. ``latency`` maps each request's latency settings to settings
    resolved by ``resolve_latency_limits`` (resolved here when not given). A model given
    as an import path is refused unless its module is in ``allow_import``, as in
    ``check_specs``. ``on_start(spec)`` and ``on_done(rows)`` are called once per
    configuration, ``on_phase(text)`` as its work moves on. Bad settings
    (``MbprofError``) stop everything; a failure of one configuration (a model that
    cannot run) is written in its row's ``error`` column, and the limits that needed its
    figures are reported as errors. ``engine`` counts (``measure_rows``')."""
    allowed = parse_allow_import(allow_import)
    for request in requests:  # all of them, before the first is built
        reason = import_refusal(request.spec.model, "budget or results file", allowed)
        if reason is not None:
            raise MbprofError(f"model {reason}")
    rows: dict[Request, dict[str, Any]] = {}
    for spec, mine in by_configuration(requests).items():
        if on_start is not None:
            on_start(spec)
        asked = []
        for request in mine:
            memory = None
            if request.memory is not None:
                wanted = dict(request.memory)
                memory = MemorySettings(wanted["dtype"], wanted["chunks"])
            settings = None
            if request.latency is not None:
                settings = (latency or {}).get(request.latency) or make_latency_settings(
                    **latency_kwargs(request.latency)
                )
            asked.append((memory, settings))
        measured = measure_rows(
            spec, asked, on_phase=on_phase, stop_on=(MbprofError, UserCodeExit), engine=engine
        )
        rows.update(zip(mine, measured, strict=True))
        if on_done is not None:
            on_done(measured)
    return rows
