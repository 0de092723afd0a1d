"""The analysis phase of a sweep: counts and memory from the cache or an executor, handed on
in the sweep's order. Torch-free: a sweep whose rows are all cached never imports torch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import is_builtin
from mbprof.api.cache import ResultCache, code_versions
from mbprof.api.executors import DaskPool, InProcess, LocalPool
from mbprof.api.single import measure_rows
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.core.settings import MemorySettings
from mbprof.frame.rows import failure_text, identity_row
from mbprof.models import HELD

if TYPE_CHECKING:
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
        from mbprof.core.errors import UnknownModelError
        from mbprof.models import get_model_info, register_model

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


def _registration(spec: ModelSpec) -> ModelInfo | None:
    """The registry entry a worker needs sent along (none for what every process finds)."""
    from mbprof.models import get_model_info

    if is_import_path(spec.model) or is_builtin(spec):
        return None
    return get_model_info(spec.model)


# Local sweeps of at most this many configurations a worker run in this process: starting
# a worker (a fresh interpreter importing torch, about 3 s here) costs more than it saves
# (benchmarks/sweep_scale.py: 2 and 4 configurations took 0.8x as long with two workers).
TASKS_PER_WORKER_TO_START = 4


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
    done: dict[int, dict[str, Any]] = {}
    todo = []
    for index, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            done[index] = hit
        else:
            todo.append(index)
    if any(spec.model in HELD for spec in specs):  # an instance stays in this process
        executor = None
    runner = _sized(executor, len(todo), all(is_builtin(specs[i]) for i in todo))
    here = isinstance(runner, InProcess)
    started: set[int] = set()

    def in_this_process(number: int) -> tuple[dict[str, Any], dict[str, Any]]:
        index = todo[number]
        started.add(index)
        if on_start is not None:
            on_start(specs[index])
        return analyse(AnalysisTask(specs[index], memory, weights, engine=engine), on_phase)

    tasks: list[Any] = list(range(len(todo)))
    ours: list[bool] = []
    if not here:
        tasks = [
            AnalysisTask(specs[i], memory, weights, _registration(specs[i]), engine) for i in todo
        ]
        # mbprof's own models may be analysed in this process beside the workers; a user's
        # model runs in a worker, where a crash costs its row, not the sweep.
        ours = [is_builtin(specs[i]) for i in todo]
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
            outcomes = runner.run(analyse, tasks, here=ours)
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
