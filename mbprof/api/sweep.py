"""Many configurations, one row each, in two phases (docs/sweeps.md): the analysis (cached,
or by an executor), then the latency, in this process, interleaved a group at a time, each
model built again (holding every model of a large sweep would cost more than building)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.analysis_phase import analysed_rows
from mbprof.api.building import build_sized
from mbprof.api.cache import ResultCache, analysis_key, latency_key
from mbprof.api.executors import DaskPool, InProcess, LocalPool, make_executor
from mbprof.api.inputs import Resolution, make_specs, memory_of, resolve_latency
from mbprof.api.single import ROW_FAILURES
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_choice
from mbprof.core.records import ModelSpec
from mbprof.core.settings import ENGINES, LatencySettings, MemorySettings, ResolvedLatency
from mbprof.frame.rows import failure_text

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.frame.accuracy import AccuracyTable

# Configurations timed interleaved together: all their models are held at once.
TIMING_GROUP = 16


def time_rows(
    specs: Sequence[ModelSpec],
    rows: Sequence[dict[str, Any]],
    latency: ResolvedLatency,
    *,
    weights: str | Path | None = None,
    cache: ResultCache | None = None,
    keys: Sequence[dict[str, Any] | None] = (),
    on_start: Callable[[ModelSpec], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    group: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Each analysed row with its latency columns added (a row without counts passed on),
    timed interleaved ``group`` configurations at a time, yielded in order."""
    from mbprof.analysis.latency.machine import machine_peak_gflops

    say = on_phase or (lambda _text: None)
    say("machine reference")
    machine_peak_gflops(latency.device, latency.threads, latency.dtype)
    keep = cache is not None and cache.latency
    keys = list(keys) or [None] * len(rows)
    group = group or TIMING_GROUP
    for start in range(0, len(rows), group):
        chunk = range(start, min(start + group, len(rows)))
        counted = [i for i in chunk if "madds" in rows[i]]  # the others did not build or count
        timed_keys = {i: latency_key(keys[i], latency) for i in counted if keep and keys[i]}
        timed = {i: hit for i, key in timed_keys.items() if (hit := cache.get(key)) is not None}
        todo = [i for i in counted if i not in timed]
        if todo and on_start is not None:
            on_start(specs[todo[0]])
        jobs, indices = [], []
        for i in todo:
            say(f"building {specs[i].label} to time it")
            try:
                model = build_sized(specs[i], weights=weights, batch=latency.batch).model
            except ROW_FAILURES as exc:
                timed[i] = {"error": failure_text(exc)}
                continue
            jobs.append((specs[i], model, rows[i]["madds"]))
            indices.append(i)
        if jobs:
            from mbprof.api.timing import interleaved_latency

            columns = interleaved_latency(jobs, latency, weights=weights, on_phase=say)
            timed.update(zip(indices, columns, strict=True))
        jobs = model = None  # dropped before the rows are handed on
        for i in todo:
            if i in timed_keys:  # (a row with an error is never kept)
                cache.put(timed_keys[i], timed[i])
        for i in chunk:
            if on_start is not None:
                on_start(specs[i])
            row, error = {**rows[i], **timed.get(i, {})}, timed.get(i, {}).get("error")
            if error and rows[i].get("error"):  # the memory's failure and the timing's
                row["error"] = f"{rows[i]['error']}; {error}"
            yield row


@dataclass
class CompareRun:
    """A sweep, checked before anything is measured: its configurations, settings and the
    accuracy table to join, where the analysis runs (``executor``: None for this process)
    and the result cache (None: none). ``rows()`` measures; ``frame(rows)`` joins accuracy."""

    specs: list[ModelSpec]
    memory: MemorySettings | None
    latency: ResolvedLatency | None
    accuracy: AccuracyTable | None
    weights: str | Path | None = None
    executor: InProcess | LocalPool | DaskPool | None = None
    cache: ResultCache | None = None
    warn: Callable[[str], None] | None = None
    engine: str = "fvcore"
    _warned: set[str] = field(default_factory=set, repr=False)

    def rows(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield one row per configuration, in the sweep's order, as each is finished."""
        keys = [
            None if self.cache is None else analysis_key(s, self.memory, self.weights, self.engine)
            for s in self.specs
        ]
        analysed = analysed_rows(
            self.specs,
            self.memory,
            keys,
            weights=self.weights,
            executor=self.executor,
            cache=self.cache,
            on_start=on_start if self.latency is None else None,
            on_phase=on_phase,
            warn=self._say,
            engine=self.engine,
        )
        if self.latency is None:
            yield from analysed
            return
        yield from time_rows(
            self.specs,
            list(analysed),
            self.latency,
            weights=self.weights,
            cache=self.cache,
            keys=keys,
            on_start=on_start,
            on_phase=on_phase,
        )

    def _say(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            (self.warn or functools.partial(warnings.warn, category=RuntimeWarning))(text)

    def frame(self, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """The rows as a frame, with published accuracy joined."""
        return add_accuracy(rows_to_frame(rows), self.accuracy)

    def check_top1(self, option: str) -> None:
        """Refuse a top-1 plot of configurations none of which has a published top-1."""
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
    workers: int | None = 1,
    executor: str = "local",
    scheduler: str | None = None,
    cache: bool | str | Path = False,
    cache_latency: bool = False,
    warn: Callable[[str], None] | None = None,
    engine: str = "fvcore",
) -> CompareRun:
    """Everything ``compare`` will do with the configurations ``specs`` (from
    ``make_specs``), checked first: memory and latency settings (resolved for this machine),
    the accuracy table (True: the published figures mbprof ships; a CSV path: that file's
    first; False: none), where the analysis runs (``executor`` "local" with ``workers``
    processes, None for the cores available, 1 for this process; or "dask" on the cluster
    whose ``scheduler`` address is given, connected to now) and the result cache (True:
    ``cache_dir()``; a folder; False: none; ``cache_latency`` keeps timings there too).
    ``warn`` receives warnings (an unwritable cache); Python's ``warnings`` by default.
    ``engine``: what counts, "fvcore" or "dispatch" (``mbprof.analysis.counting``)."""
    memory = memory_of(with_memory, mem_dtype, chunks)
    engine = parse_choice(engine, "engine", ENGINES)
    resolved = resolve_latency(latency)
    table = accuracy_for(accuracy)
    if not isinstance(cache_latency, bool):
        raise MbprofError(
            f"cache_latency: {cache_latency!r} is not true or false", field="cache_latency"
        )
    store = None
    if cache is not False and cache is not None:
        store = ResultCache(None if cache is True else cache, latency=cache_latency, warn=warn)
    elif cache_latency:
        raise MbprofError(
            "cache_latency: keeping timings needs the result cache, which is turned off",
            field="cache_latency",
        )
    pool = make_executor(executor, workers, scheduler)  # last: it may connect to a cluster
    return CompareRun(list(specs), memory, resolved, table, weights, pool, store, warn, engine)


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
    models: Iterable[Any] | Any = ("mobilenet_v2",),
    widths: Iterable[float] | float = (1.0,),
    depths: Iterable[float] | float = (1.0,),
    resolutions: Iterable[Resolution] | Resolution = (224,),
    num_classes: int = 1000,
    *,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per (model, width, depth, resolution) (``make_specs``: a lone value is one
    item, ``models="mobilenet_v2"``; a model may be an ``nn.Module``) with MAdds, params and peak activation memory,
    materialized and memory-efficient; ``options`` are ``prepare_compare``'s:
    ``with_memory``, ``mem_dtype``, ``chunks`` (T, None for one channel a chunk),
    ``latency`` (True for the default settings, or a ``LatencySettings``: each
    configuration also timed on this machine, as ``mbprof compare`` does by default),
    ``accuracy`` (published top-1 joined), ``weights`` and ``engine`` (what counts)."""
    specs = make_specs(models, widths, depths, resolutions, num_classes, kwargs)
    run = prepare_compare(specs, **options)
    return run.frame(run.rows())


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows))


def accuracy_for(accuracy: bool | str | Path | None) -> AccuracyTable | None:
    """The ``AccuracyTable`` that ``accuracy`` asks for, or None."""
    from mbprof.frame import accuracy as published

    if accuracy is False or accuracy is None:
        return None
    return published.accuracy_table(None if accuracy is True else accuracy)


def add_accuracy(frame: pd.DataFrame, table: AccuracyTable | None) -> pd.DataFrame:
    from mbprof.frame import accuracy as published

    return frame if table is None else published.join(frame, table)
