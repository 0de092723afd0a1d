"""What a user asks for, checked once at the API's edge into typed values (errors name the
parameter); nothing below the API checks them again."""

from __future__ import annotations

import itertools
import numbers
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import MAX_CLASSES, parse_positive_float, parse_resolution, refused
from mbprof.core.records import IMAGE_CHANNELS, ModelSpec
from mbprof.core.settings import (
    LatencySettings,
    MemorySettings,
    ResolvedLatency,
    check_latency,
    memory_settings,
)
from mbprof.models import HELD, check_kwargs, check_spec, get_model_info

Resolution = int | str | tuple[int, int]


def is_module(value: Any) -> bool:
    torch = sys.modules.get("torch")  # no module can exist before torch is imported
    return torch is not None and isinstance(value, torch.nn.Module)


def _target(model: Any, name: str = "model", label: str | None = None) -> str:
    """The model's name; an ``nn.Module`` instance is held under its label."""
    if is_module(model):
        from mbprof.models.user import hold

        return hold(model, label)
    if not isinstance(model, str) or not model.strip():
        shown = f"an object of type {type(model).__name__}"
        if isinstance(model, (str, type)):  # a class: the instance was meant
            shown = repr(model) if isinstance(model, str) else f"the class {model.__name__}"
        raise refused(
            name,
            f"{shown} is not a model; give a registered name such as 'mobilenet_v2', an "
            "import path such as 'mypkg.models:build', or an nn.Module instance",
        )
    if label is not None:
        raise MbprofError(f"name: labels a module only, not {model!r}", field="name")
    return model


def _input_size(value: Any) -> tuple[int, tuple[int, int]]:
    dims = tuple(getattr(value, "shape", value)) if not isinstance(value, str) else ()
    if len(dims) == 4:
        dims = dims[1:]
    if len(dims) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise refused(
            "input_size",
            f"an object of type {type(value).__name__} is not an input size; give "
            "(channels, height, width), (batch, channels, height, width) or an example input tensor",
        )
    if dims[0] < 1:
        raise MbprofError(f"input_size: {dims[0]} channels; give at least 1", field="input_size")
    return dims[0], parse_resolution(dims[1:], "input_size")


def _kwargs_pairs(kwargs: Any) -> dict[str, Any]:
    if kwargs is None or isinstance(kwargs, dict):
        return dict(kwargs or {})
    pairs: dict[str, Any] = {}
    try:
        items = list(kwargs)
    except TypeError:
        items = [None]
    if isinstance(kwargs, str) or not all(
        isinstance(p, (tuple, list)) and len(p) == 2 for p in items
    ):
        raise MbprofError(f"kwargs: {kwargs!r} is not a dict of builder arguments", field="kwargs")
    for key, value in items:
        if key in pairs:
            raise refused("kwargs", f"{key!r} is given twice; give each argument once")
        pairs[key] = value
    return pairs


def _checked(spec: ModelSpec) -> ModelSpec:
    """``spec`` (its values parsed already) checked by the model registry, its kwargs as the
    builder gets them (a 1 given for a bool parameter is True)."""
    # The bound only: the model registry refuses what is not an integer >= 1.
    if isinstance(spec.num_classes, int) and spec.num_classes > MAX_CLASSES:
        raise refused(
            "num_classes", f"{spec.num_classes} is too many; give at most {MAX_CLASSES:,}"
        )
    info = check_spec(spec)
    return replace(spec, kwargs=tuple(sorted(check_kwargs(info, dict(spec.kwargs)).items())))


def _kwargs_and_reparam(kwargs: Any, reparam: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(reparam, bool):
        raise MbprofError(f"reparam: {reparam!r} is not true or false", field="reparam")
    return tuple(sorted(_kwargs_pairs(kwargs).items()))


def make_spec(
    model: Any = "mobilenet_v2",
    width: float = 1.0,
    depth: float = 1.0,
    resolution: Resolution = 224,
    num_classes: int = 1000,
    kwargs: dict[str, Any] | Sequence[tuple[str, Any]] | None = None,
    input_size: Any = None,
    name: str | None = None,
    reparam: bool = False,
) -> ModelSpec:
    """A checked ``ModelSpec``: raises ``MbprofError`` naming any value the model refuses.
    ``model`` is a registered name, an import path (``mypkg.models:build``, imported here
    to check its signature) or an ``nn.Module`` instance, measured as it is (in eval mode,
    its weights kept) and labelled ``name`` (default: its class name). ``input_size``
    ((C, H, W), (N, C, H, W) or an example input tensor) replaces ``resolution`` and the 3
    channels of an image. ``reparam``: measure the deployed form (``mbprof.analysis.deploy``)."""
    pairs = _kwargs_and_reparam(kwargs, reparam)
    if input_size is None:
        channels, resolution = IMAGE_CHANNELS, parse_resolution(resolution, "resolution")
    else:
        channels, resolution = _input_size(input_size)
    target = _target(model, label=name)
    width, depth = parse_positive_float(width, "width"), parse_positive_float(depth, "depth")
    return _checked(
        ModelSpec(target, width, depth, resolution, num_classes, pairs, channels, reparam)
    )


_NUMBER = (numbers.Number, str)  # a lone width or depth: 0.5 or "0.5"


def _items(value: Any, name: str, lone: tuple[type, ...], one: Any = None) -> list[Any]:
    """``value`` as a list: a lone string (or number, or resolution) is one item."""
    if isinstance(value, lone) or (one is not None and one(value)):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise refused(name, f"{value!r} is neither one value nor a list of them") from None
    if not items:
        raise MbprofError(f"{name}: the list is empty; give at least one", field=name)
    return items


def _is_pair(value: Any) -> bool:
    """(160, 224): one resolution, not two."""
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _listed(model: Any) -> str | tuple[str, Any]:
    """A name, or a module held (a ``(label, module)`` pair labels it) with its label."""
    label = None
    if isinstance(model, tuple) and len(model) == 2 and is_module(model[1]):
        label, model = model
    name = _target(model, "models", label)
    return (name, model) if is_module(model) else name


def make_specs(
    models: Iterable[Any] | Any = ("mobilenet_v2",),
    widths: Iterable[float] | float = (1.0,),
    depths: Iterable[float] | float = (1.0,),
    resolutions: Iterable[Resolution] | Resolution = (224,),
    num_classes: int = 1000,
    kwargs: dict[str, Any] | None = None,
    reparam: bool = False,
) -> list[ModelSpec]:
    """Every (model, width, depth, resolution), all checked before any is built. A lone
    value (``models="mobilenet_v2"``, ``widths=1.0``, ``resolutions=224``) is one item.
    A model is a name, an import path, an ``nn.Module`` (labelled by its class name) or a
    ``(label, module)`` pair; a module, which has no knobs, is measured as it is at each of
    ``resolutions``.

    Models without a depth multiplier take only depth 1.0: a sweep over depths
    gives them one row per (width, resolution).
    """
    models = [_listed(m) for m in _items(models, "models", (str,), is_module)]
    held = [m for m in models if isinstance(m, tuple)]
    if len({name for name, _ in held}) < len({id(module) for _, module in held}):
        why = "two modules have the same label; label them: models=[('a', m1), ...]"
        raise refused("models", why)
    models = [m if isinstance(m, str) else m[0] for m in models]
    widths = [parse_positive_float(w, "widths") for w in _items(widths, "widths", _NUMBER)]
    depths = [parse_positive_float(d, "depths") for d in _items(depths, "depths", _NUMBER)]
    resolutions = [
        parse_resolution(r, "resolutions")
        for r in _items(resolutions, "resolutions", (int, str), _is_pair)
    ]
    pairs = _kwargs_and_reparam(kwargs, reparam)
    specs: list[ModelSpec] = []
    seen: set[ModelSpec] = set()  # a search of 10,000 configurations: no quadratic scan
    for model, width, depth, resolution in itertools.product(models, widths, depths, resolutions):
        if depth != 1.0 and 1.0 in depths and not get_model_info(model).has_depth:
            continue
        if model in HELD:  # a module has no knobs: measured as it is at each resolution
            width = depth = 1.0
        spec = _checked(
            ModelSpec(model, width, depth, resolution, num_classes, pairs, reparam=reparam)
        )
        try:
            new = spec not in seen
            seen.add(spec)
        except TypeError:  # a builder argument that cannot be hashed (a list)
            new = spec not in specs
        if new:
            specs.append(spec)
    return specs


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
    quantize: str = "none",
    cache_programs: bool = False,
) -> ResolvedLatency:
    """Latency settings checked and resolved for this machine ("auto" device and threads
    decided, the dtype probed); raises ``MbprofError`` naming any value this machine cannot
    run. Numbers may be given as text ("2"), as typed on a command line. See
    ``LatencySettings`` for what each setting means."""
    return resolve_latency(LatencySettings(**locals()))


def resolve_latency(settings: LatencySettings | bool | None) -> ResolvedLatency | None:
    """``settings`` resolved for this machine; True means the defaults, False or None none."""
    if settings is None or settings is False:
        return None
    if settings is True:
        settings = LatencySettings()
    checked = check_latency(settings)  # bad values are refused before torch is imported
    from mbprof.analysis.latency.machine import resolve_settings

    return resolve_settings(checked)


def memory_of(
    with_memory: bool, mem_dtype: Any = "fp16", chunks: Any = None
) -> MemorySettings | None:
    if not isinstance(with_memory, bool):
        raise MbprofError(f"with_memory: {with_memory!r} is not true or false", field="with_memory")
    settings = memory_settings(mem_dtype, chunks)
    return settings if with_memory else None
