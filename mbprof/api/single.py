"""One configuration: its counts (``profile``), its activation memory (``memory``), its
latency (``bench``) and a real run's memory (``measure_memory_spec``). Each builds the
model once (``building``) and hands it to the analyses with settings checked once
(``inputs``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mbprof.api.building import (
    build_checked,
    build_for_shapes,
    build_sized,
    check_computes,
    running,
    timing_ready,
)
from mbprof.api.inputs import make_spec, memory_of, resolve_latency
from mbprof.core.errors import MbprofError, ModelRunError
from mbprof.core.parsing import MAX_BATCH, parse_int
from mbprof.core.records import BenchResult, MeasuredMemory, MemoryReport, ModelSpec, Profile
from mbprof.core.settings import LatencySettings, MemorySettings, memory_settings, parse_mem_dtype


def profile_spec(
    spec: ModelSpec,
    weights: str | Path | None = None,
    *,
    with_memory: bool = True,
    mem_dtype: str | MemorySettings = "fp16",
    chunks: int | str | None = None,
) -> Profile:
    """Build the model of ``spec`` once, count its MAdds and parameters (and its FLOPs in
    the 2-per-multiply-add convention, ``mbprof.analysis.flops``) and (``with_memory``)
    analyse its activation memory in ``mem_dtype`` with T = ``chunks`` (None: one channel
    a chunk)."""
    from mbprof.analysis.counting import count
    from mbprof.analysis.flops import count_flops

    memory = memory_of(with_memory, mem_dtype, chunks)
    # One meta-device trace (mbprof's own models: the one that sized their activations)
    # serves the memory analysis and the FLOPs.
    built = build_sized(spec, weights=weights, trace=True)
    model, graph = built.model, built.graph
    report, missing = None, ()
    if memory is not None:
        from mbprof.analysis.memory import analyze

        try:  # counts never withheld for want of memory: the missing part says why
            with running(spec, "analysing its activation memory"):
                analysis = analyze(model, spec.input_shape(), memory, graph)
        except ModelRunError as exc:
            missing = (f"memory: {exc}",)
        else:
            report, graph = analysis.report, analysis.graph
            check_computes(spec, report)
    with running(spec, "counting its MAdds"):
        counts = count(model, spec.input_shape(), graph)
    try:  # the 2-per-multiply-add FLOPs, from the same trace as the memory analysis
        flops = count_flops(model, spec.input_shape(), graph)
    except MbprofError:  # no meta-device trace (data-dependent code): MAdds still stand
        flops = None
    notes = built.notes + counts.notes
    return Profile(spec, counts, report, flops, notes, missing)


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
    model = build_for_shapes(spec)
    with running(spec, "analysing its activation memory"):
        report = analyze(model, spec.input_shape(batch), settings).report
    return check_computes(spec, report)


def measure_memory_spec(
    spec: ModelSpec, *, mem_dtype: str = "fp16", batch: int = 1, device: str = "cpu"
) -> MeasuredMemory:
    """Run one real forward pass of ``spec`` and measure its activation storages
    (see ``mbprof.analysis.memory.measured``)."""
    from mbprof.analysis.memory.measured import measure_memory

    mem_dtype = parse_mem_dtype(mem_dtype)
    batch = parse_int(batch, "batch", maximum=MAX_BATCH)
    model = build_checked(spec, batch=batch)
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
    from mbprof.analysis.latency import time_model

    resolved = resolve_latency(settings if settings is not None else True)
    if resolved is None:
        raise MbprofError("settings: give latency settings (make_latency_settings)")
    if layers:
        from mbprof.analysis.latency.per_layer import check_layer_backend

        check_layer_backend(resolved.backend)  # before anything is built
    built = build_sized(spec, weights=weights, batch=resolved.batch)
    model = timing_ready(spec, built.model, weights)
    counts = None
    if layers:
        from mbprof.analysis.counting import count

        with running(spec, "counting its MAdds"):
            counts = count(model, spec.input_shape())
        madds = counts.madds if madds is None else madds
    shape = spec.input_shape(resolved.batch)
    with running(spec, f"timing it with {resolved.backend}"):
        timing = time_model(model, shape, resolved, madds=madds)
    if built.notes:  # how the model was sized, said beside the timing's own notes
        timing = replace(timing, notes=built.notes + timing.notes)
    profile = None
    if counts is not None:
        from mbprof.analysis.latency.per_layer import profile_layers

        with running(spec, f"profiling it layer by layer with {resolved.backend}"):
            profile = profile_layers(model, shape, resolved, timing.latency_ms, counts)
    return BenchResult(spec=spec, timing=timing, layers=profile)


def _one_configuration(spec_function: Callable[..., Any], doc: str) -> Callable[..., Any]:
    """The convenience form of ``spec_function(spec, **options)``: it takes
    ``make_spec``'s parameters (model, width, depth, resolution, num_classes, kwargs), makes
    and checks the spec, and passes the function's own options on. Its signature says both,
    for ``help()`` and editors."""
    config = inspect.signature(make_spec)
    own = list(inspect.signature(spec_function).parameters.values())[1:]  # after the spec

    @functools.wraps(spec_function)
    def call(*args: Any, **kwargs: Any) -> Any:
        named = {key: kwargs.pop(key) for key in list(kwargs) if key in config.parameters}
        return spec_function(make_spec(*args, **named), **kwargs)

    params = [*config.parameters.values()]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=inspect.signature(spec_function).return_annotation
    )
    call.__doc__ = doc
    call.__name__ = call.__qualname__ = spec_function.__name__.removesuffix("_spec")
    return call


profile = _one_configuration(
    profile_spec,
    """Profile one configuration: its MAdds and parameters, and (``with_memory``) its
    activation memory; see ``Profile``, ``CountReport`` and ``MemoryReport``.

    >>> profile("mobilenet_v2").counts.madds
    300774272
    """,
)
memory = _one_configuration(
    memory_spec,
    """Activation memory of one configuration: per resolution, peak, memory-efficient peak.

    >>> memory("mobilenet_v2", resolution=224).peak_efficient.live_bytes
    577024
    """,
)
bench = _one_configuration(
    bench_spec, "Latency of one configuration on this machine; see ``Timing`` for the figures."
)
