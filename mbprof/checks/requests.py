"""What budgets and baselines ask to be measured: one request per (configuration, memory
settings, latency settings), without repeats, grouped so that each configuration is built
and counted once however many limits it has (``mbprof.api.limits`` measures them).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mbprof.checks.limits import LATENCY_IDENTITY, RUN_METRICS, Budget, Limit
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
        latency = [lim.settings for lim in budget.limits if lim.key in RUN_METRICS]
        memory, latency = list(dict.fromkeys(memory)), list(dict.fromkeys(latency))
        pairs = list(itertools.zip_longest(memory, latency)) or [(None, None)]
        for mem, lat in pairs:
            requests.setdefault(Request(budget.spec, mem, lat), None)
    return list(requests)


def by_configuration(requests: Iterable[Request]) -> dict[ModelSpec, list[Request]]:
    """The requests of each configuration, configurations in their first request's order:
    one build and one count each."""
    grouped: dict[ModelSpec, list[Request]] = {}
    for request in requests:
        grouped.setdefault(request.spec, []).append(request)
    return grouped


def latency_kwargs(settings: Settings) -> dict[str, Any]:
    wanted = dict(settings)
    kwargs = {key: wanted[key] for key in LATENCY_IDENTITY if key in wanted}
    if wanted.get("min_time_ms") is not None:
        kwargs["min_time_s"] = wanted["min_time_ms"] / 1e3
    if wanted.get("warmup") is not None:
        kwargs["warmup"] = wanted["warmup"]
    return kwargs
