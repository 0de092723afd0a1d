"""Measure what budgets and baselines ask for: one row per (configuration, settings).

The rows have the columns of a comparison frame (``mbprof.frame.columns``), so that the pure
checks in ``mbprof.checks.budgets`` read measured rows and saved frames alike. Each
configuration is counted once however many limits it has.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mbprof.checks.budgets import LATENCY_IDENTITY, Budget, BudgetFileError, Limit
from mbprof.core.errors import MbprofError, UnknownModelError
from mbprof.core.records import ModelSpec

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


# --- which code a file may import ---------------------------------------------------------
# A budget, baseline or results file is data handed around (CI artifacts, pull requests):
# it names registered models, looked up by exact name. An import path in it
# ("mypkg.models:build") would run that module's code, so it is refused, before anything is
# imported, unless the person running mbprof allowed its module (``--allow-import``).

ANY_MODULE = "*"
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def parse_allow_import(
    items: Iterable[str] | None, option: str = "--allow-import"
) -> tuple[str, ...]:
    """['mypkg.models', 'a,b.c'] -> ('mypkg.models', 'a', 'b.c'): modules or packages whose
    code a file may import; ``"*"`` (written out) allows any module."""
    allowed: list[str] = []
    for item in [items] if isinstance(items, str) else items or []:
        for name in str(item).split(","):
            name = name.strip()
            if name != ANY_MODULE and not _MODULE_NAME.fullmatch(name):
                raise MbprofError(
                    f"{option}: {name!r} is not a module or package name (such as "
                    "mypkg.models), nor '*' (any module)"
                )
            allowed.append(name)
    return tuple(dict.fromkeys(allowed))


def imported_module(model: str) -> str | None:
    """The module that model name would import (``mypkg.models`` for
    ``mypkg.models:build``), or None for a registered model's name (looked up, never
    imported)."""
    # The very test by which the model lookup decides to import (mbprof.models).
    from mbprof.models.user import is_import_path

    return model.partition(":")[0] if is_import_path(model) else None


def import_allowed(module: str, allow_import: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``allow_import`` or inside one of them (``mypkg``
    allows ``mypkg.sub.x`` but not ``mypkgevil``)."""
    return any(
        name == ANY_MODULE or module == name or module.startswith(name + ".")
        for name in parse_allow_import(allow_import)
    )


def import_refusal(model: str, kind: str, allow_import: Iterable[str] = ()) -> str | None:
    """Why ``model``, written in a ``kind`` ("budget file", "results file"), may not be
    imported (a clause that starts with the model's name); None when it is a registered
    name or its module is allowed."""
    module = imported_module(model)
    if module is None or import_allowed(module, allow_import):
        return None
    flag = f"--allow-import {module}" if _MODULE_NAME.fullmatch(module) else "--allow-import"
    return (
        f"{model!r} is an import path; a {kind} may name registered models only (see mbprof "
        f"models); to let it import code, pass {flag}"
    )


def refuse_imports(budgets: Iterable[Budget], allow_import: Iterable[str] = ()) -> None:
    """Refuse the first budget whose model is an import path outside ``allow_import``,
    naming where it is written (``FILE:LINE`` of its ``model`` key, or ``FILE row N``)."""
    allowed = parse_allow_import(allow_import)
    for budget in budgets:
        kind = "results file" if budget.from_rows else "budget file"
        reason = import_refusal(budget.spec.model, kind, allowed)
        if reason is not None:
            raise budget.error(reason if not budget.from_rows else f"model {reason}", "model")


def refuse_row_imports(
    rows: Iterable[Mapping[str, Any]], source: str, allow_import: Iterable[str] = ()
) -> None:
    """The same for the rows of a results file read as figures (``check --results``):
    ``FILE row N`` names the first row whose model is an import path not allowed."""
    allowed = parse_allow_import(allow_import)
    for number, row in enumerate(rows, start=1):
        model = row.get("model")
        if isinstance(model, str):
            reason = import_refusal(model, "results file", allowed)
            if reason is not None:
                raise MbprofError(f"{source} row {number}: model {reason}")


def check_specs(budgets: Sequence[Budget], allow_import: Iterable[str] = ()) -> list[Budget]:
    """Each budget with its configuration checked by the model registry (names, width and
    resolution ranges, builder arguments), before anything is measured. A refusal names
    the file and line of the budget. Import paths are refused first, for every budget,
    unless their module is in ``allow_import`` (``"*"``: any): nothing is imported before."""
    from mbprof.api import make_spec

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
                if budget.from_rows:
                    raise MbprofError(f"{budget.source} row {budget.index}: {exc}") from None
                raise BudgetFileError(
                    f"budget {budget.index}, max_latency: {exc}", budget.source, limit.line
                ) from None
    return resolved


def measure(
    requests: Sequence[Request],
    on_start: Callable[[ModelSpec], None] | None = None,
    latency: Mapping[Settings, Any] | None = None,
    allow_import: Iterable[str] = (),
) -> dict[Request, dict[str, Any]]:
    """One row per request. ``latency`` maps each request's latency settings to settings
    resolved by ``resolve_latency`` (resolved here when not given). A model given as an
    import path is refused unless its module is in ``allow_import``, as in
    ``check_specs``. Bad settings
    (``MbprofError``) stop everything; a failure of one configuration (a model that
    cannot run) is written in its row's ``error`` column, and the limits that needed its
    figures are reported as errors."""
    from mbprof.api import make_latency_settings, measure_rows
    from mbprof.core.interrupts import UserCodeExit
    from mbprof.core.settings import MemorySettings

    allowed = parse_allow_import(allow_import)
    for request in requests:  # all of them, before the first is built
        reason = import_refusal(request.spec.model, "budget or results file", allowed)
        if reason is not None:
            raise MbprofError(f"model {reason}")
    by_spec: dict[ModelSpec, list[Request]] = {}
    for request in requests:
        by_spec.setdefault(request.spec, []).append(request)
    rows: dict[Request, dict[str, Any]] = {}
    for spec, mine in by_spec.items():
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
                    **_latency_kwargs(request.latency)
                )
            asked.append((memory, settings))
        measured = measure_rows(spec, asked, stop_on=(MbprofError, UserCodeExit))
        rows.update(zip(mine, measured, strict=True))
    return rows
