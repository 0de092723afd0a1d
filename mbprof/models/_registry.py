"""A registry of model builders: one decorator to join, one lookup to build.

A builder is a function ``(width, depth, num_classes, **kwargs) -> nn.Module``
(``depth`` only when the model has a depth multiplier). ``ModelInfo`` records the
knobs a model accepts so that bad values are refused before anything is built. A
builder may be given as ``"module:function"`` (the built-in models are, in
``mbprof.models.catalog``): it is imported when a model is first built, so that listing
and checking models imports no torch. This module imports no torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mbprof.core.errors import MbprofError, UnknownModelError


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
    # Further checks of (width, depth, num_classes) that only the model knows (e.g. that a
    # group count divides its channels); raises MbprofError. Runs before anything is built.
    validate: Callable[[float, float, int], None] | None = None

    @property
    def builder(self) -> Callable[..., Any]:
        """The builder function (its module imported now when given by name)."""
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

    def _width_ok(self, width: float) -> bool:
        above = width >= self.width_min if self.width_min_inclusive else width > self.width_min
        return math.isfinite(width) and above and width <= self.width_max

    def check(self, width: float, depth: float, num_classes: int) -> None:
        """Refuse knob values this model does not accept, naming the allowed range."""
        if not self._width_ok(width):
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


def register_model(
    name: str,
    *,
    family: str,
    summary: str,
    reference: str,
    width_min: float = 0.0,
    width_max: float = math.inf,
    has_depth: bool = False,
    min_resolution: int = 32,
    width_min_inclusive: bool = False,
    validate: Callable[[float, float, int], None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register_model("mynet", family=..., summary=..., reference=...)`` on a
    builder function; or called with the builder's import path instead,
    ``register_model("mynet", ...)("mypkg.nets:build")``, so that the registry knows the model
    without importing its code."""

    def decorate(builder: Callable[..., Any] | str) -> Callable[..., Any] | str:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            factory=builder,
            family=family,
            summary=summary,
            reference=reference,
            width_min=width_min,
            width_max=width_max,
            has_depth=has_depth,
            min_resolution=min_resolution,
            width_min_inclusive=width_min_inclusive,
            validate=validate,
        )
        return builder

    return decorate


def unregister_model(name: str) -> ModelInfo:
    """Remove a registered model (for a model registered for a while: tests, notebooks);
    returns its description. An unknown name raises ``UnknownModelError``."""
    info = get_model_info(name)
    del _REGISTRY[name]
    return info


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(".", "")


def suggest(name: str) -> list[str]:
    """Close registered names: 'mobilenetv2' -> ['mobilenet_v2']."""
    squashed = {_squash(n): n for n in _REGISTRY}
    exact = squashed.get(_squash(name))
    if exact:
        return [exact]
    close = difflib.get_close_matches(_squash(name), list(squashed), n=3, cutoff=0.6)
    return [squashed[c] for c in close]


def get_model_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    hints = suggest(name)
    hint = f"; did you mean {' or '.join(hints)}?" if hints else ""
    raise UnknownModelError(
        f"unknown model {name!r}{hint} (see `mbprof models` for the list, or give your own "
        "model as an import path such as mypkg.models:build)"
    )
