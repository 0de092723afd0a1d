"""Many configurations, one row each, in two phases (docs/sweeps.md): the analysis (cached,
or by an executor), then the latency, in this process, interleaved a group at a time, each
model built again (holding every model of a large sweep would cost more than building)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import build_sized, is_builtin
from mbprof.api.cache import ResultCache, analysis_key, code_versions, latency_key
from mbprof.api.executors import DaskPool, InProcess, LocalPool, make_executor
from mbprof.api.inputs import make_specs, memory_of, resolve_latency
from mbprof.api.single import (
    ROW_FAILURES,
    TimingJob,
    configured,
    interleaved_latency,
    measure_rows,
)
from mbprof.core.errors import UnknownModelError
from mbprof.core.parsing import parse_choice, refused
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.core.settings import ENGINES, LatencySettings, MemorySettings, ResolvedLatency
from mbprof.frame.accuracy import AccuracyTable, accuracy_table, check_plottable, join
from mbprof.frame.rows import failure_text, identity_row
from mbprof.models import HELD, get_model_info, register_model

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.models import ModelInfo

Executor = InProcess | LocalPool | DaskPool


@dataclass(frozen=True)
class AnalysisTask:
    """What a worker needs; ``registration``: a model registered in the sweep's process only."""

    spec: ModelSpec
    memory: MemorySettings | None
    weights: str | Path | None = None
    registration: ModelInfo | None = None
    engine: str = "fvcore"


def analyse(
    task: AnalysisTask, on_phase: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One configuration's row, in whichever process runs it, and the code's versions."""
    if task.registration is not None:
        try:
            get_model_info(task.registration.name)
        except UnknownModelError:
            knobs = {f.name: getattr(task.registration, f.name) for f in fields(task.registration)}
            name, factory = knobs.pop("name"), knobs.pop("factory")
            register_model(name, **knobs)(factory)
    rows = measure_rows(
        task.spec, [(task.memory, None)], task.weights, on_phase, engine=task.engine
    )
    return rows[0], code_versions()


# A local sweep starts no more workers than one per this many configurations (fewer than
# twice as many run in this process): starting a worker (a fresh interpreter importing torch,
# about 3 s here) costs more than it saves (benchmarks/sweep_scale.py: 8 configurations took
# 0.87x to 1.00x as long with two workers as with one).
TASKS_PER_WORKER_TO_START = 6


def _sized(executor: Executor | None, tasks: int, ours: bool) -> Executor:
    """No more local workers than pay off (a user's model keeps a worker: a crash costs its row)."""
    if executor is None or (isinstance(executor, LocalPool) and tasks <= 1):
        return InProcess()
    if isinstance(executor, LocalPool):
        most = tasks // TASKS_PER_WORKER_TO_START if ours else tasks
        workers = min(executor.workers, most)
        return LocalPool(workers) if workers > 1 or not ours else InProcess()
    return executor


def _versions_text(versions: dict[str, Any]) -> str:
    source = str(versions.get("mbprof_source", ""))[:8]
    return (
        f"mbprof {versions.get('mbprof')} (source {source}), torch {versions.get('torch')}, "
        f"fvcore {versions.get('fvcore')}, Python {versions.get('python')}"
    )


def analysed_rows(
    specs: Sequence[ModelSpec],
    memory: MemorySettings | None,
    keys: Sequence[dict[str, Any] | None],
    *,
    weights: str | Path | None = None,
    executor: Executor | None = None,
    cache: ResultCache | None = None,
    on_start: Callable[[ModelSpec], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    warn: Callable[[str], None] = lambda _text: None,
    engine: str = "fvcore",
) -> Iterator[dict[str, Any]]:
    """Each configuration's row in the order of ``specs``, from ``cache`` or ``executor``; a
    row computed by other code than this process's is not cached. Ctrl-C yields every
    finished row, in order, before it is raised."""
    done = {i: hit for i, key in enumerate(keys) if cache and (hit := cache.get(key)) is not None}
    todo = [index for index in range(len(keys)) if index not in done]
    if any(spec.model in HELD for spec in specs):  # an instance stays in this process
        executor = None
    runner = _sized(executor, len(todo), all(is_builtin(specs[i]) for i in todo))
    here = isinstance(runner, InProcess)
    started = set(todo) if here else set()  # told to on_start as each starts
    # A worker is sent the registry entry of a model registered in this process only.
    found = [here or is_import_path(s.model) or is_builtin(s) for s in specs]
    entry = {i: get_model_info(specs[i].model) for i in todo if not found[i]}
    tasks = [AnalysisTask(specs[i], memory, weights, entry.get(i), engine) for i in todo]

    def in_this_process(task: AnalysisTask) -> tuple[dict[str, Any], dict[str, Any]]:
        if on_start is not None:
            on_start(task.spec)
        return analyse(task, on_phase)

    waiting = 0  # the first row not yet handed on

    def ready(every: bool = False) -> Iterator[dict[str, Any]]:
        nonlocal waiting
        indices = sorted(done) if every else []
        while not every and waiting in done:
            indices.append(waiting)
            waiting += 1
        for index in indices:
            if on_start is not None and index not in started:
                on_start(specs[index])
            yield done.pop(index)

    yield from ready()
    mine = code_versions()
    try:
        if isinstance(runner, LocalPool):
            # mbprof's own models may be analysed in this process beside the workers; a
            # user's model runs in a worker, where a crash costs its row, not the sweep.
            outcomes = runner.run(analyse, tasks, here=[is_builtin(specs[i]) for i in todo])
        else:
            outcomes = runner.run(in_this_process if here else analyse, tasks)
        for finished, (number, outcome) in enumerate(outcomes, start=1):
            index = todo[number]
            if isinstance(outcome, BaseException):  # a worker died, the cluster gave up
                done[index] = {**identity_row(specs[index]), "error": failure_text(outcome)}
            else:
                row, versions = outcome
                if versions != mine:
                    warn(
                        f"the workers run {_versions_text(versions)}, this process "
                        f"{_versions_text(mine)}: their rows are not cached"
                    )
                elif cache is not None:
                    cache.put(keys[index], row)
                done[index] = row
            if on_phase is not None and not here:
                on_phase(f"analysed {finished} of {len(todo)} in {runner.name}")
            yield from ready()
    except KeyboardInterrupt:
        yield from ready(every=True)  # the finished rows are kept, in the sweep's order
        raise
    finally:
        runner.close()
    yield from ready()


# Configurations timed interleaved together: all their models are held at once.
TIMING_GROUP = 16


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
    executor: Executor | None = None
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
        else:
            yield from self._timed(list(analysed), keys, on_start, on_phase or (lambda _: None))

    def _timed(
        self,
        rows: list[dict[str, Any]],
        keys: list[dict[str, Any] | None],
        on_start: Callable[[ModelSpec], None] | None,
        say: Callable[[str], None],
    ) -> Iterator[dict[str, Any]]:
        """Each analysed row with its latency columns added (a row without counts passed on),
        timed interleaved ``TIMING_GROUP`` configurations at a time, yielded in order."""
        from mbprof.analysis.latency.machine import machine_peak_gflops

        specs, latency, cache = self.specs, self.latency, self.cache
        say("machine reference")
        machine_peak_gflops(latency.device, latency.threads, latency.dtype)
        keep = cache is not None and cache.latency
        for start in range(0, len(rows), TIMING_GROUP):
            chunk = range(start, min(start + TIMING_GROUP, len(rows)))
            counted = [i for i in chunk if "madds" in rows[i]]  # the others did not count
            kept = {i: latency_key(keys[i], latency) for i in counted if keep and keys[i]}
            timed = {i: hit for i, key in kept.items() if (hit := cache.get(key)) is not None}
            todo = [i for i in counted if i not in timed]
            if todo and on_start is not None:
                on_start(specs[todo[0]])
            jobs: dict[int, TimingJob] = {}
            for i in todo:
                say(f"building {specs[i].label} to time it")
                try:
                    model = build_sized(specs[i], weights=self.weights, batch=latency.batch).model
                    jobs[i] = (specs[i], model, rows[i]["madds"])
                except ROW_FAILURES as exc:
                    timed[i] = {"error": failure_text(exc)}
            if jobs:
                columns = interleaved_latency(
                    [*jobs.values()], latency, weights=self.weights, on_phase=say
                )
                timed.update(zip(jobs, columns, strict=True))
            jobs = model = None  # dropped before the rows are handed on
            for i in kept.keys() & set(todo):  # (a row with an error is never kept)
                cache.put(kept[i], timed[i])
            for i in chunk:
                if on_start is not None:
                    on_start(specs[i])
                errors = [rows[i].get("error"), timed.get(i, {}).get("error")]
                row = {**rows[i], **timed.get(i, {})}
                if all(errors):  # the memory's failure and the timing's
                    row["error"] = "; ".join(errors)
                yield row

    def _say(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            (self.warn or functools.partial(warnings.warn, category=RuntimeWarning))(text)

    def frame(self, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """The rows as a frame, with published accuracy joined."""
        frame = rows_to_frame(rows)
        return frame if self.accuracy is None else join(frame, self.accuracy)

    def check_top1(self, option: str) -> None:
        """Refuse a top-1 plot of configurations none of which has a published top-1."""
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
        raise refused("cache_latency", f"{cache_latency!r} is not true or false")
    store = None
    if cache is not False and cache is not None:
        store = ResultCache(None if cache is True else cache, latency=cache_latency, warn=warn)
    elif cache_latency:
        raise refused(
            "cache_latency", "keeping timings needs the result cache, which is turned off"
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
    memory = memory_of(with_memory, mem_dtype, chunks)
    run = CompareRun(list(specs), memory, resolve_latency(latency), None, weights)
    return run.rows(on_start=on_start, on_phase=on_phase)


def _frame(run: CompareRun) -> pd.DataFrame:
    return run.frame(run.rows())


compare: Callable[..., pd.DataFrame] = configured(
    prepare_compare,
    """One row per (model, width, depth, resolution) of ``make_specs`` (a lone value is one
    item; a model may be an ``nn.Module``) with MAdds, params and peak activation memory,
    materialized and memory-efficient, measured as ``prepare_compare`` says: ``latency``
    (True for the default settings: each configuration also timed on this machine, as
    ``mbprof compare`` does by default), ``accuracy`` (published top-1 joined).""",
    make=make_specs,
    then=_frame,
)


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows))


def accuracy_for(accuracy: bool | str | Path | None) -> AccuracyTable | None:
    """The ``AccuracyTable`` that ``accuracy`` asks for, or None."""
    if accuracy is False or accuracy is None:
        return None
    return accuracy_table(None if accuracy is True else accuracy)
