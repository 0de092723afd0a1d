"""The registry, torch-free: a builder ``(width, [depth,] num_classes, **kwargs) -> nn.Module``
(or ``"module:function"``, imported when first built) by name, with the knob values it accepts."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError, UnknownModelError, WeightsError, first_line
from mbprof.core.records import ModelSpec, is_import_path

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    name: str
    factory: Callable[..., Any] | str  # the builder, or "module:function" naming it
    family: str
    summary: str
    reference: str
    width_min: float = 0.0  # exclusive unless width_min_inclusive
    width_max: float = math.inf  # inclusive
    has_depth: bool = False
    min_resolution: int = 32
    width_min_inclusive: bool = False
    # Checks of (width, depth, num_classes) only the model knows, before anything is built.
    validate: Callable[[float, float, int], None] | None = None

    @property
    def builder(self) -> Callable[..., Any]:
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attribute = self.factory.partition(":")
        return getattr(importlib.import_module(module), attribute)

    @property
    def width_range(self) -> str:
        low = ">=" if self.width_min_inclusive else ">"
        if math.isinf(self.width_max):
            return f"{low} {self.width_min:g}"
        return f"{self.width_min:g} {low.replace('>', '<')} w <= {self.width_max:g}"

    def check(self, width: float, depth: float, num_classes: int) -> None:
        """Refuse knob values this model does not accept, naming the allowed range."""
        above = width >= self.width_min if self.width_min_inclusive else width > self.width_min
        if not (math.isfinite(width) and above and width <= self.width_max):
            raise MbprofError(
                f"width {width:g} is outside {self.name}'s range: width must be {self.width_range}"
            )
        if not (math.isfinite(depth) and depth > 0):
            raise MbprofError(f"depth {depth:g} is not allowed: depth must be a finite number > 0")
        if not self.has_depth and depth != 1.0:
            raise MbprofError(
                f"{self.name} has no depth multiplier: depth must be 1.0, not {depth:g}"
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise MbprofError(f"classes {num_classes!r} is not allowed: give an integer >= 1")
        if self.validate is not None:
            self.validate(width, depth, num_classes)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, **meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register_model("mynet", family=..., summary=..., reference=...)`` (and
    any other field of ``ModelInfo``) on a builder function; or called with the builder's
    import path instead, ``register_model("mynet", ...)("mypkg.nets:build")``, so that the
    registry knows the model without importing its code."""

    def decorate(builder: Callable[..., Any] | str) -> Callable[..., Any] | str:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, builder, **meta)
        return builder

    return decorate


def unregister_model(name: str) -> ModelInfo:
    """Remove a registered model (tests, notebooks); an unknown name raises UnknownModelError."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY.pop(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


# nn.Module instances given from Python, by their label (``mbprof.models.user.hold``):
# found by name in this process only, never listed, never cached.
HELD: dict[str, ModelInfo] = {}

# Models by the names people use (``timm/mobileone_s0``), built without weights by the
# library's own factory: no code of a file's choosing runs, so a budget file may name them
# without --allow-import. An argument that would load weights is refused (use --weights).
HUBS = {  # library -> (module, its list of names, its factory, how it is told "no weights")
    "timm": ("timm", "list_models", "create_model", {"pretrained": False}),
    "torchvision": ("torchvision.models", "list_models", "get_model", {"weights": None}),
}
WEIGHTS_ARGS = ("pretrained", "weights", "checkpoint_path", "pretrained_cfg", "cache_dir")


def hub_library(name: str) -> str | None:
    """``timm`` for ``timm/mobileone_s0`` (a library mbprof builds models of), else None."""
    library, slash, _ = name.partition("/")
    return library if slash and library in HUBS else None


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(".", "")


def _unknown(name: str) -> UnknownModelError:
    # Close registered names: 'mobilenetv2' -> mobilenet_v2.
    squashed = {_squash(n): n for n in _REGISTRY}
    close = difflib.get_close_matches(_squash(name), list(squashed), n=3, cutoff=0.6)
    hints = [squashed[_squash(name)]] if _squash(name) in squashed else [squashed[c] for c in close]
    hint = f"; did you mean {' or '.join(hints)}?" if hints else ""
    return UnknownModelError(
        f"unknown model {name!r}{hint} (see `mbprof models` for the list, or give your own "
        "model as an import path such as mypkg.models:build)"
    )


def get_model_info(name: str) -> ModelInfo:
    """A registered model's description, a user model's (``mypkg.models:build``, which
    imports and inspects that code; an ``nn.Module`` given from Python) or a library's
    (``timm/mobileone_s0``, ``torchvision/resnet50``: ``mbprof.models.user.hub_model_info``)."""
    if name in HELD:
        return HELD[name]
    if is_import_path(name) or hub_library(name):
        from mbprof.models import user  # imports torch

        return (user.user_model_info if is_import_path(name) else user.hub_model_info)(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise _unknown(name)


# Wrappers that training scripts put around a state dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")


def _unwrap(obj: object, where: str) -> Mapping[str, Any]:
    import torch

    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], where)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError(f"{where} does not hold a state dict of tensors")


def load_weights(model: nn.Module, path: str | Path, label: str = "the model") -> nn.Module:
    """Load a local checkpoint into ``model`` in place, safely (``weights_only=True``); every
    key and shape must match, or ``WeightsError`` says what does not fit."""
    import pickle
    import zipfile

    import torch

    where = f"weights file {str(path)!r}"
    if not Path(path).is_file():
        raise WeightsError(f"{where} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text is never passed on: it advises retrying with weights_only=False,
        # which would run whatever code the file holds.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise WeightsError(
            f"{where} refers to {found.group(1)}, which is not a tensor or a plain container; "
            "mbprof loads checkpoints with weights_only=True and never runs code from one"
            if found
            else f"{where} is not a readable PyTorch checkpoint: its data is not a state dict "
            "saved by torch.save (or the file is damaged)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(
            f"{where} is not a readable PyTorch checkpoint ({type(exc).__name__})"
        ) from None
    state = {k.removeprefix("module."): v for k, v in _unwrap(obj, where).items()}
    expected = model.state_dict()
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if wrong:
        k, more = wrong[0], f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise WeightsError(
            f"{where} does not fit {label}: {k} has shape {list(state[k].shape)} in the file "
            f"but {list(expected[k].shape)} in the model{more}"
        )
    parts = [
        f"{len(keys)} {what} keys (first: {keys[0]})"
        for what, keys in (
            ("missing", [k for k in expected if k not in state]),
            ("unexpected", [k for k in state if k not in expected]),
        )
        if keys
    ]
    if parts:
        raise WeightsError(f"{where} does not fit {label}: {', '.join(parts)}")
    model.load_state_dict(state)
    return model


KNOBS = {"width": 1.0, "depth": 1.0, "num_classes": 1000}  # mbprof's knobs, their defaults
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
    """``value`` checked against the bool, int, float or str that a builder parameter's
    annotation (``'float'``, ``int | None``, ``Optional[str]``) or else its default names."""
    annotation = param.annotation
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = text.replace(" ", "").replace("typing.", "").replace("builtins.", "").strip("'\"")
    parts = re.sub(r"^Optional\[(\w+)\]$", r"\1|None", text).split("|")
    named = [p for p in parts if p not in ("None", "NoneType")]
    kind = next((t for t in _TAKES if len(named) == 1 and t.__name__ == named[0]), None)
    nullable = param.default is None or (kind is not None and len(named) < len(parts))
    if kind is None and type(param.default) in _TAKES:
        kind = type(param.default)
    if kind is None or (value is None and nullable):
        return value
    allowed, accepts = _TAKES[kind]
    if accepts(value):
        return bool(value) if kind is bool else value
    raise MbprofError(f"{who} argument {key!r} takes {allowed}, not {value!r}")


def check_kwargs(info: ModelInfo, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` (``--arg``, budget-file ``args``, the API's) checked against the builder's
    signature, as the builder gets them; none: the builder's module is not even imported."""
    if not kwargs:
        return {}
    try:
        params = dict(inspect.signature(info.builder).parameters)
    except (TypeError, ValueError):  # no signature to check against
        return dict(kwargs)
    variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {k: p for k, p in params.items() if k not in KNOBS and p.kind not in variadic}
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in KNOBS:
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
    check_kwargs(info, dict(spec.kwargs))
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
    knobs = {"width": width, "num_classes": num_classes}
    knobs.update({"depth": depth} if info.has_depth else {})
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
    knobs = (spec.model, spec.width, spec.depth, spec.num_classes, weights)
    return create_model(*knobs, **dict(spec.kwargs))


# ShuffleNet v1's channels (torch-free: a scale is refused before anything is built): the
# paper's Table 1, per stage its units (the first with stride 2) and channels at 1x for each g.
GROUPS = (1, 2, 3, 4, 8)
STAGES = (
    (4, (144, 200, 240, 272, 384)),
    (8, (288, 400, 480, 544, 768)),
    (4, (576, 800, 960, 1088, 1536)),
)


def conv1_channels(scale: float, groups: int) -> int:
    base = 12 if scale <= 0.5 else 24 if scale <= 1.5 else 48
    return math.ceil(base / groups) * groups


def stage_channels(scale: float, groups: int) -> tuple[int, ...]:
    return tuple(int(round(out[GROUPS.index(groups)] * scale)) for _, out in STAGES)


def check_scale(scale: float, groups: int) -> None:
    """Refuse a scale at which ``groups`` does not divide a stage's output or bottleneck."""
    for number, out in enumerate(stage_channels(scale, groups), start=2):
        for what, channels in (("output", out), ("bottleneck", out // 4)):
            if channels < 1 or channels % groups:
                raise MbprofError(
                    f"shufflenet_v1_g{groups} cannot be built at scale (width) {scale:g}: "
                    f"{groups} groups do not divide the {channels} {what} channels of "
                    f"stage {number}; pick another scale or group count"
                )


# The built-in models, registered by name without importing their code (and torch).
register_model(
    "mobilenet_v1",
    family="MobileNetV1",
    summary="Depthwise-separable convolutions; 569M MAdds, 4.2M params at 1.0@224",
    reference="Howard et al. 2017 (arXiv:1704.04861); TF-Slim mobilenet_v1 width rule",
)("mbprof.models.builders:MobileNetV1")
register_model(
    "mobilenet_v2",
    family="MobileNetV2",
    summary="Inverted residuals with linear bottlenecks; 300M MAdds, 3.5M params at 1.0@224",
    reference="Sandler et al. 2018 (arXiv:1801.04381); torchvision mobilenet_v2 layout",
    has_depth=True,
)("mbprof.models.builders:MobileNetV2")
for _size, _figures in (("large", "217M MAdds, 5.4M"), ("small", "56M MAdds, 2.5M")):
    register_model(
        f"mobilenet_v3_{_size}",
        family="MobileNetV3",
        summary=f"MobileNetV3-{_size.title()}: SE and hard-swish; {_figures} params at 1.0@224",
        reference=f"Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_{_size} layout",
    )(f"mbprof.models.builders:mobilenet_v3_{_size}")
register_model(
    "nasnet_a_mobile",
    family="NASNet-A",
    summary="NASNet-A Mobile 4 @ 1056; 564M MAdds, 5.3M params at 224; width scales F (44)",
    reference="Zoph et al. 2018 (arXiv:1707.07012); TF-Slim build_nasnet_mobile",
    width_min=0.1,
    width_min_inclusive=True,
)("mbprof.models.builders:NASNetAMobile")
_SHUFFLENET_SUMMARY = {
    1: "ShuffleNet v1, 1 group (no shuffle); width = scale 0.25x..2x",
    3: "ShuffleNet v1, 3 groups; 137M MAdds at 1x, 524M and 5.4M params at 2x (224)",
}
for _groups in GROUPS:
    _summary = f"ShuffleNet v1, {_groups} groups; width = scale 0.25x..2x"
    register_model(
        f"shufflenet_v1_g{_groups}",
        family="ShuffleNet v1",
        summary=_SHUFFLENET_SUMMARY.get(_groups, _summary),
        reference="Zhang et al. 2017 (arXiv:1707.01083); megvii-model/ShuffleNet-Series widths",
        width_min=0.25,
        width_min_inclusive=True,
        width_max=2.0,
        validate=lambda width, *_, groups=_groups: check_scale(width, groups),
    )(f"mbprof.models.builders:shufflenet_v1_g{_groups}")
