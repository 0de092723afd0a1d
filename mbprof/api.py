"""The Python API; the CLI is a thin layer over these functions.

import mbprof
model = mbprof.create_model("mobilenet_v2", width=0.5)
p = mbprof.profile("mobilenet_v2", width=1.0, resolution=224)
p.counts.madds    # 300774272
p.memory.peak_efficient.live_bytes    # 577024 (fp16, one channel a chunk)
frame = mbprof.compare(widths=[0.35, 0.5, 1.0, 1.4], resolutions=[96, 224])
t = mbprof.bench("mobilenet_v2", settings=mbprof.make_latency_settings(threads=2)).timing
t.latency_ms      # median wall time of one batch on this machine
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError, ModelRunError, ResourceError
from mbprof.core.interrupts import UserCodeExit, contained
from mbprof.core.parsing import (
    MAX_BATCH,
    MAX_CLASSES,
    parse_chunks,
    parse_int,
    parse_mem_dtype,
    parse_positive_float,
    parse_resolution,
)
from mbprof.core.records import (
    BenchResult,
    LatencySettings,
    MeasuredMemory,
    MemoryReport,
    ModelSpec,
    Profile,
)

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from mbprof.frame.accuracy import AccuracyTable

Resolution = int | str | tuple[int, int]


def _model_name(model: Any, name: str = "model") -> str:
    if not isinstance(model, str) or not model.strip():
        raise MbprofError(
            f"{name}: {model!r} is not a model name; give a registered name such as "
            "'mobilenet_v2' or an import path such as 'mypkg.models:build'"
        )
    return model


def _resolution_text(resolution: Any) -> str:
    """224, '160x224' or (160, 224) as the text ``parse_resolution`` reads."""
    if isinstance(resolution, (tuple, list)):
        if len(resolution) != 2 or not all(
            isinstance(side, int) and not isinstance(side, bool) for side in resolution
        ):
            raise MbprofError(
                f"resolution: {resolution!r} is not a resolution; give an integer, "
                "'HEIGHTxWIDTH' or a (height, width) pair of integers"
            )
        return f"{resolution[0]}x{resolution[1]}"
    if isinstance(resolution, bool) or not isinstance(resolution, (int, str)):
        raise MbprofError(
            f"resolution: {resolution!r} is not a resolution; give an integer, "
            "'HEIGHTxWIDTH' or a (height, width) pair of integers"
        )
    return str(resolution)


def _kwargs_pairs(kwargs: Any) -> dict[str, Any]:
    """A dict of builder arguments from a dict or (key, value) pairs; a key twice is refused."""
    if kwargs is None:
        return {}
    if isinstance(kwargs, dict):
        return dict(kwargs)
    pairs: dict[str, Any] = {}
    try:
        items = list(kwargs)
    except TypeError:
        items = None
    if (
        items is None
        or isinstance(kwargs, str)
        or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in items)
    ):
        raise MbprofError(f"kwargs: {kwargs!r} is not a dict of builder arguments")
    for key, value in items:
        if key in pairs:
            raise MbprofError(f"kwargs: {key!r} is given twice; give each argument once")
        pairs[key] = value
    return pairs


def _classes(num_classes: Any) -> Any:
    """The bound only: the model registry refuses what is not an integer >= 1."""
    if isinstance(num_classes, int) and num_classes > MAX_CLASSES:
        raise MbprofError(f"classes {num_classes} is too many; give at most {MAX_CLASSES:,}")
    return num_classes


def make_spec(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    kwargs: dict[str, Any] | Sequence[tuple[str, Any]] | None = None,
) -> ModelSpec:
    """A checked ``ModelSpec``: raises ``MbprofError`` naming any value the model refuses."""
    from mbprof.models import check_kwargs, check_spec

    spec = ModelSpec(
        model=_model_name(model),
        width=parse_positive_float(width, "width"),
        depth=parse_positive_float(depth, "depth"),
        resolution=parse_resolution(_resolution_text(resolution), "resolution"),
        num_classes=_classes(num_classes),
        kwargs=tuple(sorted(_kwargs_pairs(kwargs).items())),
    )
    info = check_spec(spec)
    # As the builder gets them (a 1 given for a bool parameter is True).
    return replace(spec, kwargs=tuple(sorted(check_kwargs(info, dict(spec.kwargs)).items())))


_NUMBER = (numbers.Number, str)  # a lone width or depth: 0.5 or "0.5"


def _items(value: Any, name: str, lone: tuple[type, ...]) -> list[Any]:
    """``value`` as a list: a lone string (or number, or resolution) is one item, not a
    sequence of letters; an iterable gives its items; nothing at all is refused."""
    if isinstance(value, lone):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise MbprofError(f"{name}: {value!r} is neither one value nor a list of them") from None
    if not items:
        raise MbprofError(f"{name}: the list is empty; give at least one")
    return items


def make_specs(
    models: Iterable[str] | str = ("mobilenet_v2",),
    widths: Iterable[float] | float = (1.0,),
    depths: Iterable[float] | float = (1.0,),
    resolutions: Iterable[Resolution] | int | str = (224,),
    num_classes: int = 1000,
    kwargs: dict[str, Any] | None = None,
) -> list[ModelSpec]:
    """Every (model, width, depth, resolution), all checked before any is built. A lone
    value (``models="mobilenet_v2"``, ``widths=1.0``, ``resolutions=224``) is one item.

    Models without a depth multiplier take only depth 1.0: a sweep over depths
    gives them one row per (width, resolution).
    """
    from mbprof.models import get_model_info

    models = [_model_name(m, "models") for m in _items(models, "models", (str,))]
    widths = [parse_positive_float(w, "widths") for w in _items(widths, "widths", _NUMBER)]
    depths = [parse_positive_float(d, "depths") for d in _items(depths, "depths", _NUMBER)]
    resolutions = _items(resolutions, "resolutions", (int, str))
    specs: list[ModelSpec] = []
    for model, width, depth, resolution in itertools.product(models, widths, depths, resolutions):
        if depth != 1.0 and 1.0 in depths and not get_model_info(model).has_depth:
            continue
        spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
        if spec not in specs:
            specs.append(spec)
    return specs


def _refuse_if_over(
    spec: ModelSpec, need: int, what: str, cause: str = "", have: int | None = None
) -> None:
    """ResourceError when ``need`` bytes exceed the free memory (``have``, read now when not
    given). ``cause`` names the knob to change when it alone makes the difference (fewer
    classes, a smaller batch); otherwise resolution or width are."""
    from mbprof.analysis.footprint import available_memory_bytes
    from mbprof.core.units import format_bytes

    have = available_memory_bytes() if have is None else have
    if need > have:
        raise ResourceError(
            f"{spec.label} needs about {format_bytes(need)} for its {what}, more than the "
            f"{format_bytes(have)} of memory available; {cause or 'use a smaller resolution or width'}"
        )


def _param_cause(spec: ModelSpec, have: int) -> str:
    """'use fewer classes' when the default 1000 classes would fit: the classifier is to blame."""
    from mbprof.analysis.footprint import param_bytes
    from mbprof.models import create_from_spec

    if spec.num_classes <= 1000:
        return ""
    default = replace(spec, num_classes=1000)
    try:
        fits = param_bytes(lambda: create_from_spec(default)) <= have
    except MbprofError:  # a user model that takes no num_classes
        return ""
    return f"use fewer classes ({spec.num_classes:,} classes are the cause)" if fits else ""


def build_checked(spec: ModelSpec, weights: str | Path | None = None, batch: int = 1) -> nn.Module:
    """Build the model of ``spec``, first making sure that it and a float32 forward pass
    of ``batch`` images fit in free memory (refused with ``ResourceError`` otherwise)."""
    from mbprof.analysis.footprint import activation_bytes, available_memory_bytes, param_bytes
    from mbprof.models import create_from_spec

    have = available_memory_bytes()
    params = param_bytes(lambda: create_from_spec(spec))
    if params > have:
        _refuse_if_over(spec, params, "parameters", _param_cause(spec, have), have)
    model = create_from_spec(spec, weights=weights)
    # Sized for one image and scaled (the estimate is linear in the batch), so that a huge
    # batch is refused before its input tensor is allocated.
    with _running(spec, "sizing its activations"):
        per_image = activation_bytes(model, spec.input_shape(1))
    what, cause = "activations", ""
    if batch > 1:
        what = f"activations at batch {batch:,}"
        if per_image <= have:
            most = have // max(per_image, 1)
            cause = f"use a smaller batch (batch {batch:,} is the cause; about {most:,} fit)"
    _refuse_if_over(spec, per_image * batch, what, cause, have)
    return model


@contextmanager
def _running(spec: ModelSpec, phase: str) -> Iterator[None]:
    """Name the model and what mbprof was doing when the model's own code raises
    (``ValueError: forward is broken`` alone does not say which model, or when). A
    ``sys.exit`` in it is ``UserCodeExit``, never the end of the run (``contained``)."""
    try:
        with contained(spec.model, phase):
            yield
    except (MbprofError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the model named
        lines = str(exc).strip().splitlines()
        first = f": {lines[0]}" if lines else ""
        at = spec.label.removeprefix(spec.model).strip()
        raise ModelRunError(
            f"model {spec.model!r} failed while {phase} ({at}): {type(exc).__name__}{first}"
        ) from exc


def _check_computes(spec: ModelSpec, report: MemoryReport) -> MemoryReport:
    """A model whose forward writes no tensor (``torch.nn:Identity``) has nothing to report."""
    if not report.curve:
        raise ModelRunError(
            f"model {spec.model!r} computes nothing from its input: its forward pass runs no "
            "operation that writes a tensor (it returns the input, or a view of it), so there "
            "is no activation memory to report"
        )
    return report


def profile_spec(
    spec: ModelSpec,
    weights: str | Path | None = None,
    *,
    memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
) -> Profile:
    """Build the model of ``spec``, count its MAdds and parameters and (``memory``) analyse
    its activation memory in ``mem_dtype`` with T = ``chunks`` (None: one channel a chunk)."""
    from mbprof.analysis.counting import count

    mem_dtype, chunks = parse_mem_dtype(mem_dtype, "mem_dtype"), parse_chunks(chunks, "chunks")
    model = build_checked(spec, weights=weights)
    report = None
    if memory:
        from mbprof.analysis.memory import analyze_memory

        with _running(spec, "analysing its activation memory"):
            report = analyze_memory(model, spec.input_shape(), dtype=mem_dtype, chunks=chunks)
        _check_computes(spec, report)
    with _running(spec, "counting its MAdds"):
        counts = count(model, spec.input_shape())
    return Profile(spec=spec, counts=counts, memory=report)


def _build_for_shapes(spec: ModelSpec) -> nn.Module:
    """The model of ``spec`` with parameters on the meta device (no memory, no init cost),
    for analyses that need shapes only; built for real if its builder refuses meta."""
    import torch

    from mbprof.models import create_from_spec

    try:
        with torch.device("meta"):
            return create_from_spec(spec)
    except UserCodeExit:
        raise
    except Exception:  # noqa: BLE001 - a builder that needs real tensors: build it for real
        return build_checked(spec)


def memory_spec(
    spec: ModelSpec,
    *,
    dtype: str = "fp16",
    chunks: int | str | None = None,
    batch: int = 1,
) -> MemoryReport:
    """Activation memory of ``spec`` (see ``mbprof.analysis.memory`` for what it counts)."""
    from mbprof.analysis.memory import analyze_memory

    dtype, chunks = parse_mem_dtype(dtype, "dtype"), parse_chunks(chunks, "chunks")
    batch = parse_int(batch, "batch", maximum=MAX_BATCH)
    model = _build_for_shapes(spec)
    with _running(spec, "analysing its activation memory"):
        report = analyze_memory(model, spec.input_shape(batch), dtype, chunks)
    return _check_computes(spec, report)


def memory(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    *,
    dtype: str = "fp16",
    chunks: int | str | None = None,
    batch: int = 1,
    kwargs: dict[str, Any] | None = None,
) -> MemoryReport:
    """Activation memory of one configuration: per resolution, peak, memory-efficient peak.

    >>> report = memory("mobilenet_v2", resolution=224)
    >>> report.peak_efficient.live_bytes
    577024
    """
    spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
    return memory_spec(spec, dtype=dtype, chunks=chunks, batch=batch)


def measure_memory_spec(
    spec: ModelSpec, *, dtype: str = "fp16", batch: int = 1, device: str = "cpu"
) -> MeasuredMemory:
    """Run one real forward pass of ``spec`` and measure its activation storages
    (see ``mbprof.analysis.memory.measured``)."""
    from mbprof.analysis.memory.measured import measure_memory as measure

    dtype, batch = parse_mem_dtype(dtype, "dtype"), parse_int(batch, "batch", maximum=MAX_BATCH)
    model = build_checked(spec, batch=batch)
    with _running(spec, "measuring its memory"):
        return measure(model, spec.input_shape(batch), dtype=dtype, device=device)


def profile(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    *,
    weights: str | Path | None = None,
    kwargs: dict[str, Any] | None = None,
    memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
) -> Profile:
    """Profile one configuration; see ``Profile``, ``CountReport`` and ``MemoryReport``."""
    spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
    return profile_spec(spec, weights=weights, memory=memory, mem_dtype=mem_dtype, chunks=chunks)


def _spec_columns(spec: ModelSpec) -> dict[str, Any]:
    return {
        "model": spec.model,
        "width": spec.width,
        "depth": spec.depth,
        "resolution": spec.res_label,
        "input_h": spec.resolution[0],
        "input_w": spec.resolution[1],
        "num_classes": spec.num_classes,
    }


def profile_row(result: Profile) -> dict[str, Any]:
    """One flat row of a comparison frame (column meanings in ``mbprof.frame.columns``)."""
    spec = result.spec
    row: dict[str, Any] = {
        **_spec_columns(spec),
        "madds": result.counts.madds,
        "params": result.counts.params,
        "other_flops": result.counts.other_flops,
    }
    if spec.kwargs:
        row["args"] = " ".join(f"{k}={v}" for k, v in spec.kwargs)
    if result.memory is not None:
        row.update(memory_columns(result.memory))
    return row


def memory_columns(report: MemoryReport) -> dict[str, Any]:
    """The memory columns of a comparison frame (described in ``mbprof.frame.columns``)."""
    return {
        "peak_act_bytes": report.peak.live_bytes,
        "peak_act_bytes_efficient": report.peak_efficient.live_bytes,
        "max_tensor_bytes": report.max_tensor_bytes,
        "mem_dtype": report.dtype,
        "mem_chunks": report.chunks_label,
    }


def make_latency_settings(
    device: str = "auto",
    batch: int = 1,
    threads: int | None = None,
    dtype: str = "fp32",
    backend: str = "eager",
    channels_last: bool = False,
    fuse_bn: bool = False,
    min_time_s: float = 1.0,
    warmup: int = 10,
    compile_backend: str = "inductor",
) -> LatencySettings:
    """Checked latency settings for this machine ("auto" device and threads decided);
    raises ``MbprofError`` naming any value this machine cannot run. See ``LatencySettings``."""
    from mbprof.analysis.latency import resolve_settings

    return resolve_settings(
        LatencySettings(
            device=device,
            batch=batch,
            threads=threads,
            dtype=dtype,
            backend=backend,
            channels_last=channels_last,
            fuse_bn=fuse_bn,
            min_time_s=min_time_s,
            warmup=warmup,
            compile_backend=compile_backend,
        )
    )


def bench_spec(
    spec: ModelSpec,
    settings: LatencySettings | None = None,
    weights: str | Path | None = None,
    madds: int | None = None,
) -> BenchResult:
    """Build the model of ``spec`` and measure its latency with ``settings``."""
    from mbprof.analysis.latency import resolve_settings, time_model

    settings = resolve_settings(settings or LatencySettings())
    model = build_checked(spec, weights=weights, batch=settings.batch)
    with _running(spec, f"timing it with {settings.backend}"):
        timing = time_model(model, spec.input_shape(settings.batch), settings, madds=madds)
    return BenchResult(spec=spec, timing=timing)


def bench(
    model: str = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    *,
    settings: LatencySettings | None = None,
    weights: str | Path | None = None,
    kwargs: dict[str, Any] | None = None,
) -> BenchResult:
    """Latency of one configuration on this machine; see ``Timing`` for the figures."""
    spec = make_spec(model, width, depth, resolution, num_classes, kwargs)
    return bench_spec(spec, settings=settings, weights=weights)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ModelRunError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the row names the model and configuration already
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _latency_columns(
    spec: ModelSpec, settings: LatencySettings, weights: str | Path | None, madds: int
) -> dict[str, Any]:
    """The latency columns of one row; a failure (out of memory, export error) fills
    ``error`` instead of the figures, so that a sweep goes on."""
    from mbprof.analysis.latency.environment import environment
    from mbprof.core.records import environment_row

    try:
        return bench_spec(spec, settings, weights=weights, madds=madds).timing.as_row()
    except Exception as exc:  # noqa: BLE001 - recorded in the row; Ctrl-C still stops
        return {**environment_row(environment(settings)), "error": _failure(exc)}


def compare_row(
    spec: ModelSpec,
    weights: str | Path | None = None,
    latency: LatencySettings | None = None,
    on_phase: Callable[[str], None] | None = None,
    **memory: Any,
) -> dict[str, Any]:
    """One row of a comparison frame: counts, memory (``memory``, ``mem_dtype``, ``chunks``
    as for ``profile_spec``) and latency with resolved ``latency`` settings. A
    configuration that does not fit or fails to run gets an ``error``, as does a model
    whose code calls ``sys.exit`` (``UserCodeExit``): the sweep goes on."""
    say = on_phase or (lambda _text: None)
    say("counting")
    try:
        row = profile_row(profile_spec(spec, weights=weights, **memory))
    except (ResourceError, RuntimeError, MemoryError, UserCodeExit) as exc:
        return {**_spec_columns(spec), "error": _failure(exc)}
    if latency is not None:
        say(f"timing {latency.backend}")
        row.update(_latency_columns(spec, latency, weights, row["madds"]))
    return row


def iter_compare(
    specs: Sequence[ModelSpec],
    weights: str | Path | None = None,
    on_start: Callable[[ModelSpec], None] | None = None,
    *,
    memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
    latency: LatencySettings | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one row per configuration as it is measured (for progress bars and for
    keeping finished rows when a sweep is interrupted). With ``latency`` (settings from
    ``make_latency_settings``) each row also holds its timing and environment."""
    mem_dtype, chunks = parse_mem_dtype(mem_dtype, "mem_dtype"), parse_chunks(chunks, "chunks")
    if latency is not None:
        from mbprof.analysis.latency import machine_peak_gflops, resolve_settings

        latency = resolve_settings(latency)
        if on_phase is not None:
            on_phase("machine reference")
        machine_peak_gflops(latency.device, latency.threads, latency.dtype)
    for spec in specs:
        if on_start is not None:
            on_start(spec)
        yield compare_row(
            spec,
            weights=weights,
            latency=latency,
            on_phase=on_phase,
            memory=memory,
            mem_dtype=mem_dtype,
            chunks=chunks,
        )


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows))


def compare(
    models: Iterable[str] | str = ("mobilenet_v2",),
    widths: Iterable[float] | float = (1.0,),
    depths: Iterable[float] | float = (1.0,),
    resolutions: Iterable[Resolution] | int | str = (224,),
    num_classes: int = 1000,
    *,
    kwargs: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    memory: bool = True,
    mem_dtype: str = "fp16",
    chunks: int | str | None = None,
    latency: bool | LatencySettings = False,
    accuracy: bool | str | Path = True,
) -> pd.DataFrame:
    """One row per (model, width, depth, resolution) (a lone value is one item:
    ``models="mobilenet_v2"``) with MAdds, params and (``memory``)
    peak activation memory in ``mem_dtype``, materialized and memory-efficient (T =
    ``chunks``, None for one channel a chunk). ``latency=True`` (default settings) or a
    ``LatencySettings`` also measures each configuration's latency on this machine;
    ``mbprof compare`` on the command line does so by default.

    ``accuracy``: True joins the published top-1/top-5 shipped with mbprof (see
    ``mbprof.frame.accuracy``), a path to a CSV puts that file's figures first, False joins none.
    """
    mem_dtype, chunks = parse_mem_dtype(mem_dtype, "mem_dtype"), parse_chunks(chunks, "chunks")
    table = accuracy_for(accuracy)
    specs = make_specs(models, widths, depths, resolutions, num_classes, kwargs)
    settings = None
    if latency is not False and latency is not None:
        settings = make_latency_settings() if latency is True else latency
        from mbprof.analysis.latency import resolve_settings

        settings = resolve_settings(settings)
    rows = iter_compare(
        specs, weights=weights, memory=memory, mem_dtype=mem_dtype, chunks=chunks, latency=settings
    )
    return add_accuracy(rows_to_frame(rows), table)


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
