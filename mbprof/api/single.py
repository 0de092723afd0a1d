"""One configuration: counts and memory (built once, traced once) as a profile or as rows,
its memory alone, its latency and a real run's memory."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import (
    Built,
    build_sized,
    check_computes,
    running,
    size_parameters_of,
    timing_ready,
)
from mbprof.api.inputs import make_spec, memory_of, resolve_latency
from mbprof.core.errors import MbprofError, ModelRunError, ResourceError, UserCodeExit
from mbprof.core.parsing import MAX_BATCH, parse_choice, parse_int
from mbprof.core.records import (
    BenchResult,
    CountReport,
    MeasuredMemory,
    MemoryReport,
    ModelSpec,
    Profile,
    Timing,
)
from mbprof.core.settings import (
    ENGINES,
    LatencySettings,
    MemorySettings,
    ResolvedLatency,
    memory_settings,
    parse_mem_dtype,
)
from mbprof.frame.rows import (
    count_columns,
    environment_columns,
    failure_text,
    identity_row,
    latency_columns,
    memory_columns,
)

if TYPE_CHECKING:
    from torch import nn

    from mbprof.analysis.memory.graph import Graph

Request = tuple[MemorySettings | None, ResolvedLatency | None]
# What a model's failure to build or run is: recorded in its row, and the sweep goes on.
ROW_FAILURES = (ResourceError, RuntimeError, MemoryError, UserCodeExit)


@dataclass(frozen=True)
class Measured:
    """A configuration's model, counts, memory report (or failure) per settings, and trace."""

    spec: ModelSpec
    built: Built
    counts: CountReport
    memory: dict[MemorySettings, MemoryReport | BaseException]
    graph: Graph | None
    weights: str | Path | None = None

    def time(self, latency: ResolvedLatency, what: str = "", madds: int | None = None) -> Timing:
        """Its latency with ``latency``, mbprof's own models calibrated first (``timing_ready``)."""
        from mbprof.analysis.latency.harness import time_model

        model = timing_ready(self.spec, self.built.model, self.weights)
        with running(self.spec, f"timing it with {what or latency.backend}"):
            shape = self.spec.input_shape(latency.batch)
            madds = self.counts.madds if madds is None else madds
            return time_model(model, shape, latency, madds=madds)


def measure(
    spec: ModelSpec,
    memories: Sequence[MemorySettings] = (),
    *,
    weights: str | Path | None = None,
    batch: int = 1,
    say: Callable[[str], None] = lambda _text: None,
    stop_on: tuple[type[BaseException], ...] = (),
    engine: str = "fvcore",
) -> Measured:
    """The model of ``spec`` built once, traced once, read by the memory analysis with each
    of ``memories`` (a failure kept unless in ``stop_on``) and by the counting; timed with
    ``Measured.time``."""
    from mbprof.analysis.counting import count
    from mbprof.analysis.memory import analyze

    say("counting")
    built = build_sized(spec, weights=weights, batch=batch, trace=True)
    graph = built.graph
    reports: dict[MemorySettings, MemoryReport | BaseException] = {}
    for memory in dict.fromkeys(memories):
        say("memory")
        analysis = None
        try:
            with running(spec, "analysing its activation memory"):
                analysis = analyze(built.model, spec.input_shape(), memory, graph)
            reports[memory] = check_computes(spec, analysis.report)
            graph = analysis.graph
        except ROW_FAILURES as exc:
            # A forward pass that cannot be traced (ModelRunError) is kept even when asked to
            # stop: the counts (and latency) still stand, the memory is named missing.
            if isinstance(exc, stop_on) and (analysis or not isinstance(exc, ModelRunError)):
                raise
            reports[memory] = exc
    with running(spec, "counting its MAdds"):
        counts = count(built.model, spec.input_shape(), graph, engine)
    return Measured(spec, built, counts, reports, graph, weights)


def profile_spec(
    spec: ModelSpec,
    weights: str | Path | None = None,
    *,
    with_memory: bool = True,
    mem_dtype: str | MemorySettings = "fp16",
    chunks: int | str | None = None,
    engine: str = "fvcore",
) -> Profile:
    """Build the model of ``spec`` once, count its MAdds and parameters (and its FLOPs in
    the 2-per-multiply-add convention, ``mbprof.analysis.flops``) and (``with_memory``)
    analyse its activation memory in ``mem_dtype`` with T = ``chunks`` (None: one channel
    a chunk), all from one meta-device trace (``measure``). ``engine``: what counts,
    "fvcore" or "dispatch" (``mbprof.analysis.counting``)."""
    from mbprof.analysis.flops import count_flops

    memory = memory_of(with_memory, mem_dtype, chunks)
    engine = parse_choice(engine, "engine", ENGINES)
    measured = measure(
        spec, [memory] if memory else [], weights=weights, stop_on=ROW_FAILURES, engine=engine
    )
    try:  # the 2-per-multiply-add FLOPs, from the same trace as the memory analysis
        flops = count_flops(measured.built.model, spec.input_shape(), measured.graph)
    except MbprofError:  # no meta-device trace (data-dependent code): MAdds still stand
        flops = None
    report = measured.memory.get(memory)
    missing: tuple[str, ...] = ()
    if isinstance(report, BaseException):  # counts never withheld for want of memory
        report, missing = None, (f"memory: {report}",)
    notes = measured.built.notes + measured.counts.notes
    return Profile(spec, measured.counts, report, flops, notes, missing)


def measure_rows(
    spec: ModelSpec,
    requests: Sequence[Request],
    weights: str | Path | None = None,
    on_phase: Callable[[str], None] | None = None,
    stop_on: tuple[type[BaseException], ...] = (),
    engine: str = "fvcore",
) -> list[dict[str, Any]]:
    """One row per (memory, latency) request of one configuration, built and counted once;
    a failure is the rows' ``error`` unless it is one of ``stop_on``."""
    say = on_phase or (lambda _text: None)
    base = identity_row(spec)
    batch = max([latency.batch for _, latency in requests if latency is not None] or [1])
    memories = [memory for memory, _ in requests if memory is not None]
    try:
        measured = measure(
            spec, memories, weights=weights, batch=batch, say=say, stop_on=stop_on, engine=engine
        )
    except ROW_FAILURES as exc:
        if isinstance(exc, stop_on):
            raise
        return [{**base, "error": failure_text(exc)} for _ in requests]
    base.update(count_columns(measured.counts, measured.built.notes))
    rows = []
    for memory, latency in requests:
        row, errors = dict(base), []
        if memory is not None:
            report = measured.memory[memory]
            if isinstance(report, BaseException):  # the counts and latency still stand
                errors.append(failure_text(report))
            else:
                row.update(memory_columns(report))
        if latency is not None:
            say(f"timing {latency.backend}")
            jobs = [(spec, measured.built.model, measured.counts.madds)]
            (columns,) = interleaved_latency(jobs, latency, weights, rounds=1, stop_on=stop_on)
            errors.append(columns.pop("error", None))
            row.update(columns)
        if any(errors):
            row["error"] = "; ".join(e for e in errors if e)
        rows.append(row)
    return rows


# One configuration to time: its spec, its model and its MAdds per image.
TimingJob = tuple[ModelSpec, "nn.Module", int]


def interleaved_latency(
    jobs: Sequence[TimingJob],
    latency: ResolvedLatency,
    weights: str | Path | None = None,
    *,
    rounds: int | None = None,
    on_phase: Callable[[str], None] | None = None,
    stop_on: tuple[type[BaseException], ...] = (),
) -> list[dict[str, Any]]:
    """The latency columns of every job, timed interleaved in ``rounds`` round-robin rounds;
    a failure is its row's ``error`` unless one of ``stop_on`` (raised after the others)."""
    from mbprof.analysis.latency import harness
    from mbprof.analysis.latency.machine import environment

    failed: dict[int, BaseException] = {}
    targets, indices = [], []
    for index, (spec, model, madds) in enumerate(jobs):
        try:
            model = timing_ready(spec, model, weights)
        except Exception as exc:  # noqa: BLE001 - recorded in its row (or raised below)
            failed[index] = exc
            continue
        guard = lambda what, spec=spec: running(spec, what)  # noqa: E731
        shape = spec.input_shape(latency.batch)
        targets.append(harness.Target(model, shape, madds, spec.label, guard))
        indices.append(index)
    timed = harness.time_models(targets, latency, rounds or harness.ROUNDS, on_phase)
    results = dict(zip(indices, timed, strict=True))
    failed.update((i, r) for i, r in results.items() if isinstance(r, Exception))
    for exc in failed.values():
        if isinstance(exc, stop_on):
            raise exc
    return [
        {**environment_columns(environment(latency)), "error": failure_text(failed[i])}
        if i in failed
        else latency_columns(results[i])
        for i in range(len(jobs))
    ]


def memory_spec(
    spec: ModelSpec,
    *,
    mem_dtype: str | MemorySettings = "fp16",
    chunks: int | str | None = None,
    batch: int = 1,
) -> MemoryReport:
    """Activation memory of ``spec`` (see ``mbprof.analysis.memory`` for what it counts),
    from a model built on the meta device."""
    from mbprof.analysis.memory import analyze

    settings = memory_settings(mem_dtype, chunks)
    batch = parse_int(batch, "batch", maximum=MAX_BATCH)
    # On the meta device where it can be (shapes are all the analysis reads); re-parameterizing
    # folds real weights, so that model is built for real.
    model = build_sized(spec).model if spec.reparam else size_parameters_of(spec).model
    with running(spec, "analysing its activation memory"):
        report = analyze(model, spec.input_shape(batch), settings).report
    return check_computes(spec, report)


def measure_memory_spec(
    spec: ModelSpec, *, mem_dtype: str = "fp16", batch: int = 1, device: str = "cpu"
) -> MeasuredMemory:
    """Run one real forward pass of ``spec`` and measure its activation storages."""
    from mbprof.analysis.memory.measured import measure_memory

    mem_dtype = parse_mem_dtype(mem_dtype)
    batch = parse_int(batch, "batch", maximum=MAX_BATCH)
    model = build_sized(spec, batch=batch).model
    with running(spec, "measuring its memory"):
        return measure_memory(model, spec.input_shape(batch), dtype=mem_dtype, device=device)


def bench_spec(
    spec: ModelSpec,
    settings: LatencySettings | None = None,
    weights: str | Path | None = None,
    madds: int | None = None,
    layers: bool = False,
) -> BenchResult:
    """Build the model of ``spec`` once and measure its latency with ``settings``
    (resolved here unless they already are: ``make_latency_settings``). mbprof's own
    models are calibrated first (``timing_ready``). ``layers``: also where the time goes,
    layer by layer, on the same backend (eager or onnxruntime; see ``LayerProfile``)."""
    resolved = resolve_latency(settings if settings is not None else True)
    if resolved is None:
        raise MbprofError("settings: give latency settings (make_latency_settings)")
    if layers:
        from mbprof.analysis.latency.roofline import check_layer_backend, profile_layers

        check_layer_backend(resolved.backend)  # before anything is built
    measured = measure(spec, weights=weights, batch=resolved.batch)
    timing = measured.time(resolved, madds=madds)
    # How the model was sized, said beside the timing's own notes.
    timing = replace(timing, notes=measured.built.notes + timing.notes)
    profile = None
    if layers:
        shape, model = spec.input_shape(resolved.batch), measured.built.model
        with running(spec, f"profiling it layer by layer with {resolved.backend}"):
            profile = profile_layers(model, shape, resolved, timing.latency_ms, measured.counts)
    return BenchResult(spec=spec, timing=timing, layers=profile)


def configured(
    function: Callable[..., Any], doc: str, make: Callable[..., Any] = make_spec, then: Any = None
) -> Callable[..., Any]:
    """``function`` (its result handed to ``then``, if given) taking ``make``'s parameters in
    place of the first of its own (the rest keyword-only), its signature saying both."""
    config = inspect.signature(make)
    own = list(inspect.signature(function).parameters.values())[1:]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        named = {key: kwargs.pop(key) for key in list(kwargs) if key in config.parameters}
        result = function(make(*args, **named), **kwargs)
        return result if then is None else then(result)

    params = [*config.parameters.values()]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=inspect.signature(then or function).return_annotation
    )
    call.__doc__ = doc
    name = function.__name__.removeprefix("prepare_").removesuffix("_spec")
    call.__name__ = call.__qualname__ = name
    return call


profile: Callable[..., Profile] = configured(
    profile_spec,
    """Profile one configuration: its MAdds and parameters, and (``with_memory``) its
    activation memory; see ``Profile``, ``CountReport`` and ``MemoryReport``. ``model`` is
    a registered name, an import path or an ``nn.Module`` instance (give its
    ``input_size``; labelled by its class name unless ``name`` says otherwise).

    >>> profile("mobilenet_v2").counts.madds
    300774272
    """,
)
memory: Callable[..., MemoryReport] = configured(
    memory_spec,
    """Activation memory of one configuration: per resolution, peak, memory-efficient peak.

    >>> memory("mobilenet_v2", resolution=224).peak_efficient.live_bytes
    577024
    """,
)
bench: Callable[..., BenchResult] = configured(
    bench_spec, "Latency of one configuration on this machine; see ``Timing`` for the figures."
)
