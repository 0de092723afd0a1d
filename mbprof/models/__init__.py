"""Model builders and their registry.

Importing this package registers every built-in model. ``create_model`` is the one
way to build a model from its name and knobs.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import nn

from mbprof.errors import MbprofError
from mbprof.models import (  # noqa: F401  (registers the models)
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    nasnet,
    shufflenet,
)
from mbprof.models._layers import make_divisible
from mbprof.models._registry import ModelInfo, list_models, register_model
from mbprof.models._registry import get_model_info as _registered_model_info
from mbprof.models.user import is_import_path, user_model_info
from mbprof.models.weights import load_weights
from mbprof.records import ModelSpec

__all__ = [
    "ModelInfo",
    "create_model",
    "check_spec",
    "create_from_spec",
    "get_model_info",
    "list_models",
    "load_weights",
    "make_divisible",
    "register_model",
]


def get_model_info(name: str) -> ModelInfo:
    """A registered model's description, or a user model's (``mypkg.models:build``, which
    imports and inspects that code)."""
    if is_import_path(name):
        return user_model_info(name)
    return _registered_model_info(name)


def _check_kwargs(info: ModelInfo, kwargs: dict[str, Any]) -> None:
    params = inspect.signature(info.builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = sorted(set(params) - {"width", "depth", "num_classes"})
    for key in kwargs:
        if key not in allowed:
            takes = ", ".join(allowed) if allowed else "no extra arguments"
            raise MbprofError(f"{info.name} does not take argument {key!r}; it takes: {takes}")


def check_spec(spec: ModelSpec) -> ModelInfo:
    """Refuse a configuration the model cannot take, before anything is built."""
    info = get_model_info(spec.model)
    info.check(spec.width, spec.depth, spec.num_classes)
    _check_kwargs(info, spec.builder_kwargs())
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
    _check_kwargs(info, kwargs)
    knobs: dict[str, Any] = {"width": width, "num_classes": num_classes}
    if info.has_depth:
        knobs["depth"] = depth
    model = info.builder(**knobs, **kwargs)
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
