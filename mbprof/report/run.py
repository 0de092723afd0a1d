"""Measuring the report's configurations: one comparison row each (``mbprof.api``'s
``CompareRun``: built once, counted once, memory and latency from settings resolved once),
published accuracy joined, and the machine's load around the run.

The CPU latency column is measured the way the paper's phone figures were: the deployed
form (batch norm folded, NHWC), one image, fp32, on one thread (``LATENCY_DEFAULTS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mbprof.core.records import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.settings import ResolvedLatency

LATENCY_DEFAULTS: dict[str, Any] = {
    "device": "cpu",
    "batch": 1,
    "threads": 1,
    "dtype": "fp32",
    "backend": "eager",
    "channels_last": True,
    "fuse_bn": True,
    "min_time_s": 1.0,
}


def report_latency(options: dict[str, Any] | None = None) -> ResolvedLatency:
    """The latency settings of the CPU column: ``LATENCY_DEFAULTS`` updated with
    ``options``, checked and resolved for this machine (``MbprofError`` names a setting it
    cannot run)."""
    from mbprof.api.inputs import make_latency_settings

    return make_latency_settings(**{**LATENCY_DEFAULTS, **(options or {})})


def measure_configs(
    specs: Sequence[ModelSpec],
    *,
    latency: ResolvedLatency | None,
    with_memory: bool = True,
    on_start: Callable[[ModelSpec], None] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """One comparison row per configuration, in the order of ``specs``, with published
    accuracy joined, peak activation memory in fp16 (``with_memory``) and latency measured
    with ``latency`` (None: not timed)."""
    from mbprof.api.inputs import memory_settings
    from mbprof.api.sweep import CompareRun, accuracy_for, rows_to_frame

    if not specs:  # nothing to measure: not even the machine reference that timing needs
        return rows_to_frame([])
    run = CompareRun(
        list(specs),
        memory_settings("fp16") if with_memory else None,
        latency,
        accuracy_for(True),
    )
    rows = []
    for row in run.rows(on_start=on_start):
        rows.append(row)
        if on_done is not None:
            on_done(row)
    return run.frame(rows)


def machine_load() -> tuple[float, float] | None:
    """The load average over 1 and 5 minutes (None where the system does not say)."""
    import os

    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return None
    return one, five
