"""Model builders and their registry: importing this registers the built-in models by name
(no torch); ``create_model`` builds one from its name and knobs."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError, first_line
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.models._registry import ModelInfo as ModelInfo
from mbprof.models._registry import get_model_info as _registered_model_info
from mbprof.models._registry import list_models as list_models
from mbprof.models._registry import register_model as register_model
from mbprof.models._registry import unregister_model as unregister_model

if TYPE_CHECKING:
    from torch import nn


# nn.Module instances given from Python, by their label (``mbprof.models.user.hold``):
# found by name in this process only, never listed, never cached.
HELD: dict[str, ModelInfo] = {}

# Models by the names people use (``timm/mobileone_s0``, ``torchvision/resnet50``), built
# without weights by the library's own factory: no code of a file's choosing runs, so a
# budget file may name them without --allow-import. An argument that would load weights
# is refused (a checkpoint comes from --weights).
HUBS = {  # library -> (module, its list of names, its factory, how it is told "no weights")
    "timm": ("timm", "list_models", "create_model", {"pretrained": False}),
    "torchvision": ("torchvision.models", "list_models", "get_model", {"weights": None}),
}
WEIGHTS_ARGS = ("pretrained", "weights", "checkpoint_path", "pretrained_cfg", "cache_dir")


def hub_library(name: str) -> str | None:
    """``timm`` for ``timm/mobileone_s0`` (a library mbprof builds models of), else None."""
    library, slash, _ = name.partition("/")
    return library if slash and library in HUBS else None


def get_model_info(name: str) -> ModelInfo:
    """A registered model's description, a user model's (``mypkg.models:build``, which
    imports and inspects that code; an ``nn.Module`` given from Python) or a library's
    (``timm/mobileone_s0``, ``torchvision/resnet50``: ``mbprof.models.user.hub_model_info``)."""
    if name in HELD:
        return HELD[name]
    if is_import_path(name):
        from mbprof.models.user import user_model_info

        return user_model_info(name)
    if hub_library(name):
        from mbprof.models.user import hub_model_info

        return hub_model_info(name)
    return _registered_model_info(name)


def load_weights(model: nn.Module, path: str | Path, label: str = "the model") -> nn.Module:
    """Load a local checkpoint into ``model`` (see ``mbprof.models.weights``)."""
    from mbprof.models.weights import load_weights as load

    return load(model, path, label=label)


KNOB_NAMES = ("width", "depth", "num_classes")
_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}
_TAKES: dict[type, tuple[str, Callable[[Any], bool]]] = {  # what a value of a type may be
    bool: ("true or false (or 1 or 0)", lambda v: isinstance(v, int) and v in (0, 1)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: (
        "a finite number",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    ),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _typed_value(who: str, key: str, param: inspect.Parameter, value: Any) -> Any:
    """``value`` checked against the type a builder parameter takes: its annotation when that
    names bool, int, float or str (``'float'``, ``int | None``, ``Optional[str]``), else the
    type of its default (a 1 or 0 for a bool becomes True or False)."""
    annotation = param.annotation
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = text.replace(" ", "").replace("typing.", "").replace("builtins.", "").strip("'\"")
    parts = re.sub(r"^Optional\[(\w+)\]$", r"\1|None", text).split("|")
    named = [p for p in parts if p not in ("None", "NoneType")]
    kind = _SCALARS.get(named[0]) if len(named) == 1 else None
    nullable = param.default is None or (kind is not None and len(named) < len(parts))
    if kind is None and type(param.default) in _SCALARS.values():
        kind = type(param.default)
    if kind is None or (value is None and nullable):
        return value
    allowed, accepts = _TAKES[kind]
    if accepts(value):
        return bool(value) if kind is bool else value
    raise MbprofError(f"{who} argument {key!r} takes {allowed}, not {value!r}")


def check_kwargs(info: ModelInfo, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` checked against the builder's signature (names and types): the one check
    for ``--arg``, budget-file ``args`` and the API's ``kwargs``; returns the values as the
    builder gets them. No arguments: the builder's module is not even imported."""
    if not kwargs:
        return {}
    try:
        params = dict(inspect.signature(info.builder).parameters)
    except (TypeError, ValueError):  # no signature to check against
        return dict(kwargs)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        k: p
        for k, p in params.items()
        if k not in KNOB_NAMES
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in KNOB_NAMES:
            raise MbprofError(
                f"{info.name} argument {key!r} is one of mbprof's own knobs: set it as "
                f"{key.replace('num_', '')} (--{key.replace('num_', '')}), not as an extra argument"
            )
        if key in named:
            checked[key] = _typed_value(info.name, key, named[key], value)
        elif open_ended:
            checked[key] = value
        else:
            takes = ", ".join(sorted(named)) if named else "no extra arguments"
            raise MbprofError(f"{info.name} does not take argument {key!r}; it takes: {takes}")
    return checked


def check_spec(spec: ModelSpec) -> ModelInfo:
    """Refuse a configuration the model cannot take, before anything is built."""
    info = get_model_info(spec.model)
    info.check(spec.width, spec.depth, spec.num_classes)
    check_kwargs(info, spec.builder_kwargs())
    if min(spec.resolution) < info.min_resolution:
        raise MbprofError(
            f"resolution {spec.res_label} is too small for {spec.model}: "
            f"each side must be >= {info.min_resolution} pixels"
        )
    return info


def create_model(
    name: str,
    width: float = 1.0,
    depth: float = 1.0,
    num_classes: int = 1000,
    weights: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model in eval mode, optionally loading a local checkpoint.

    >>> model = create_model("mobilenet_v2", width=0.5)
    """
    info = get_model_info(name)
    info.check(width, depth, num_classes)
    kwargs = check_kwargs(info, kwargs)
    knobs: dict[str, Any] = {"width": width, "num_classes": num_classes}
    if info.has_depth:
        knobs["depth"] = depth
    try:
        model = info.builder(**knobs, **kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, MbprofError) or not kwargs:
            raise
        # A value of the right type that the builder still refuses (dropout=2).
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise MbprofError(
            f"{name} refused its argument{'s' if len(kwargs) > 1 else ''} {given}: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
    if weights is not None:
        load_weights(model, weights, label=f"{name} width {float(width)!r}")
    return model.eval()


def create_from_spec(spec: ModelSpec, weights: str | Path | None = None) -> nn.Module:
    return create_model(
        spec.model,
        width=spec.width,
        depth=spec.depth,
        num_classes=spec.num_classes,
        weights=weights,
        **spec.builder_kwargs(),
    )
