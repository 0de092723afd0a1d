"""Many configurations, one row each: ``compare`` and the row measurement that ``check``
and ``reproduce`` share. A row's model is built once (sized on the meta device, then
built for real) and counted once, whatever memory and latency settings it is asked for.

Rows have the columns of ``mbprof.frame.columns``; ``mbprof.frame.rows`` writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import build_sized, check_computes, running, timing_ready
from mbprof.api.inputs import Resolution, make_specs, memory_of, resolve_latency
from mbprof.core.errors import ResourceError
from mbprof.core.interrupts import UserCodeExit
from mbprof.core.records import ModelSpec
from mbprof.core.settings import LatencySettings, MemorySettings, ResolvedLatency
from mbprof.frame.rows import (
    count_columns,
    environment_columns,
    failure_text,
    identity_row,
    latency_columns,
    memory_columns,
)

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.frame.accuracy import AccuracyTable

Request = tuple[MemorySettings | None, ResolvedLatency | None]
# What a model's failure to build or run is: recorded in its row, and the sweep goes on.
ROW_FAILURES = (ResourceError, RuntimeError, MemoryError, UserCodeExit)


def _quiet(_text: str) -> None:
    pass


def measure_rows(
    spec: ModelSpec,
    requests: Sequence[Request],
    weights: str | Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    stop_on: tuple[type[BaseException], ...] = (),
) -> list[dict[str, Any]]:
    """One row per (memory settings, latency settings) request of one configuration, the
    model built and counted once for all of them. A configuration that does not fit or
    fails to run gets an ``error`` in every row (or in the row whose latency failed),
    unless its failure is one of ``stop_on``, which is raised (``check`` stops on a model
    that cannot be measured rather than judging it)."""
    from mbprof.analysis.counting import count

    say = on_phase or _quiet
    base = identity_row(spec)
    batch = max([latency.batch for _, latency in requests if latency is not None] or [1])
    say("counting")
    try:
        built = build_sized(spec, weights=weights, batch=batch)
        model = built.model
        with running(spec, "counting its MAdds"):
            counts = count(model, spec.input_shape())
    except ROW_FAILURES as exc:
        if isinstance(exc, stop_on):
            raise
        return [{**base, "error": failure_text(exc)} for _ in requests]
    base.update(count_columns(counts, built.notes))
    rows = []
    memory_done: dict[MemorySettings, dict[str, Any]] = {}
    for memory, latency in requests:
        row = dict(base)
        if memory is not None:
            try:
                if memory not in memory_done:
                    memory_done[memory] = _memory_columns(spec, model, memory, say)
                row.update(memory_done[memory])
            except ROW_FAILURES as exc:
                if isinstance(exc, stop_on):
                    raise
                rows.append({**row, "error": failure_text(exc)})
                continue
        if latency is not None:
            timed = _latency_columns(spec, model, latency, counts.madds, say, stop_on, weights)
            row.update(timed)
        rows.append(row)
    return rows


def _memory_columns(
    spec: ModelSpec, model: Any, memory: MemorySettings, say: Callable[[str], None]
) -> dict[str, Any]:
    from mbprof.analysis.memory import analyze

    say("memory")
    with running(spec, "analysing its activation memory"):
        report = analyze(model, spec.input_shape(), memory).report
    return memory_columns(check_computes(spec, report))


def _latency_columns(
    spec: ModelSpec,
    model: Any,
    latency: ResolvedLatency,
    madds: int,
    say: Callable[[str], None],
    stop_on: tuple[type[BaseException], ...] = (),
    weights: str | Path | None = None,
) -> dict[str, Any]:
    """Latency and its environment (mbprof's own models calibrated first: ``timing_ready``);
    a run that fails (out of memory, an export error) leaves its ``error`` and the
    environment it was asked for."""
    from mbprof.analysis.latency import time_model
    from mbprof.analysis.latency.environment import environment

    say(f"timing {latency.backend}")
    try:
        model = timing_ready(spec, model, weights)
        with running(spec, f"timing it with {latency.backend}"):
            timing = time_model(model, spec.input_shape(latency.batch), latency, madds=madds)
    except Exception as exc:  # noqa: BLE001 - recorded in the row; Ctrl-C still stops
        if isinstance(exc, stop_on):
            raise
        return {**environment_columns(environment(latency)), "error": failure_text(exc)}
    return latency_columns(timing)


def measure_row(
    spec: ModelSpec,
    *,
    weights: str | Path | None = None,
    memory: MemorySettings | None = None,
    latency: ResolvedLatency | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One row of a comparison frame: counts, memory with ``memory`` settings (None: no
    memory columns) and latency with resolved ``latency`` settings (None: not timed)."""
    return measure_rows(spec, [(memory, latency)], weights=weights, on_phase=on_phase)[0]


@dataclass
class CompareRun:
    """A sweep, checked before anything is measured: its configurations, settings and the
    accuracy table to join. ``rows()`` measures; ``frame(rows)`` joins accuracy."""

    specs: list[ModelSpec]
    memory: MemorySettings | None
    latency: ResolvedLatency | None
    accuracy: AccuracyTable | None
    weights: str | Path | None = None

    def rows(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield one row per configuration as it is measured (for progress bars, and for
        keeping finished rows when a sweep is interrupted)."""
        if self.latency is not None:
            from mbprof.analysis.latency import machine_peak_gflops

            if on_phase is not None:
                on_phase("machine reference")
            machine_peak_gflops(self.latency.device, self.latency.threads, self.latency.dtype)
        for spec in self.specs:
            if on_start is not None:
                on_start(spec)
            yield measure_row(
                spec,
                weights=self.weights,
                memory=self.memory,
                latency=self.latency,
                on_phase=on_phase,
            )

    def frame(self, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """The rows as a frame, with published accuracy joined."""
        return add_accuracy(rows_to_frame(rows), self.accuracy)

    def check_top1(self, option: str) -> None:
        """Refuse, before any counting, a top-1 plot of configurations none of which has a
        published top-1 (``option`` names what asked for the plot)."""
        from mbprof.frame.accuracy import check_plottable

        check_plottable(self.accuracy, self.specs, option)


def prepare_compare(
    specs: Sequence[ModelSpec],
    *,
    weights: str | Path | None = None,
    with_memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
    latency: bool | LatencySettings = False,
    accuracy: bool | str | Path = True,
) -> CompareRun:
    """Everything ``compare`` will do with the configurations ``specs`` (from
    ``make_specs``), checked first: memory and latency settings (resolved for this machine)
    and the accuracy table (True: the published figures mbprof ships; a CSV path: that
    file's first; False: none)."""
    memory = memory_of(with_memory, mem_dtype, chunks)
    return CompareRun(
        list(specs), memory, resolve_latency(latency), accuracy_for(accuracy), weights
    )


def iter_compare(
    specs: Sequence[ModelSpec],
    weights: str | Path | None = None,
    on_start: Callable[[ModelSpec], None] | None = None,
    *,
    with_memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
    latency: LatencySettings | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one row per configuration of ``specs`` as it is measured. With ``latency``
    (settings from ``make_latency_settings``) each row also holds its timing."""
    run = CompareRun(
        list(specs),
        memory_of(with_memory, mem_dtype, chunks),
        resolve_latency(latency),
        None,
        weights,
    )
    return run.rows(on_start=on_start, on_phase=on_phase)


def compare(
    models: Iterable[str] | str = ("mobilenet_v2",),
    widths: Iterable[float] | float = (1.0,),
    depths: Iterable[float] | float = (1.0,),
    resolutions: Iterable[Resolution] | Resolution = (224,),
    num_classes: int = 1000,
    *,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per (model, width, depth, resolution) (``make_specs``: a lone value is one
    item, ``models="mobilenet_v2"``) with MAdds, params and peak activation memory,
    materialized and memory-efficient; ``options`` are ``prepare_compare``'s:
    ``with_memory``, ``mem_dtype``, ``chunks`` (T, None for one channel a chunk),
    ``latency`` (True for the default settings, or a ``LatencySettings``: each
    configuration also timed on this machine, as ``mbprof compare`` does by default),
    ``accuracy`` (published top-1 joined) and ``weights``."""
    specs = make_specs(models, widths, depths, resolutions, num_classes, kwargs)
    run = prepare_compare(specs, **options)
    return run.frame(run.rows())


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows))


def accuracy_for(accuracy: bool | str | Path | None) -> AccuracyTable | None:
    """The ``AccuracyTable`` that ``accuracy`` asks for (read and checked now), or None."""
    from mbprof.frame import accuracy as published

    if accuracy is False or accuracy is None:
        return None
    return published.accuracy_table(None if accuracy is True else accuracy)


def add_accuracy(frame: pd.DataFrame, table: AccuracyTable | None) -> pd.DataFrame:
    """``frame`` with published accuracy joined (unchanged when ``table`` is None)."""
    from mbprof.frame import accuracy as published

    return frame if table is None else published.join(frame, table)
