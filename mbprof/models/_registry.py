"""A registry of model builders: one decorator to join, one lookup to build.

A builder is a function ``(width, depth, num_classes, **kwargs) -> nn.Module``
(``depth`` only when the model has a depth multiplier). ``ModelInfo`` records the
knobs a model accepts so that bad values are refused before anything is built. A
builder may be given as ``"module:function"`` (the built-in models are, at the end of this
module): it is imported when a model is first built, so that listing and checking models
imports no torch. This module imports no torch.

A new architecture: its builder in a file of its own (``mbprof/models/<name>.py``), one
``_register`` call at the end of this module.
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


# ShuffleNet v1's channels at a scale, here (torch-free) so that the registry refuses a
# scale at which a group count does not divide a stage's channels before anything is built.
GROUPS = (1, 2, 3, 4, 8)
SCALE_MIN, SCALE_MAX = 0.25, 2.0


@dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 1: ``units`` ShuffleNet units, the first with stride 2,
    whose output channels at 1x are ``g1`` ... ``g8`` for 1 ... 8 groups."""

    units: int
    g1: int
    g2: int
    g3: int
    g4: int
    g8: int

    def channels(self, groups: int, scale: float) -> int:
        return int(round(getattr(self, f"g{groups}") * scale))


# units, output channels at 1x for g = 1, 2, 3, 4, 8 (Stage2 at 28x28, Stage3, Stage4 at 7x7)
STAGES: tuple[Stage, ...] = (
    Stage(4, 144, 200, 240, 272, 384),
    Stage(8, 288, 400, 480, 544, 768),
    Stage(4, 576, 800, 960, 1088, 1536),
)


def conv1_channels(scale: float, groups: int) -> int:
    """conv1 width: 12 up to 0.5x, 24 up to 1.5x, 48 above, rounded up to a multiple of g."""
    base = 12 if scale <= 0.5 else 24 if scale <= 1.5 else 48
    return math.ceil(base / groups) * groups


def stage_channels(scale: float, groups: int) -> tuple[int, ...]:
    return tuple(stage.channels(groups, scale) for stage in STAGES)


def check_scale(scale: float, groups: int) -> None:
    """Refuse a scale at which ``groups`` does not divide a stage's output or bottleneck
    channels (the grouped 1x1 convs and the shuffle need both to be multiples of g)."""
    for number, out in enumerate(stage_channels(scale, groups), start=2):
        for what, channels in (("output", out), ("bottleneck", out // 4)):
            if channels < 1 or channels % groups:
                raise MbprofError(
                    f"shufflenet_v1_g{groups} cannot be built at scale (width) {scale:g}: "
                    f"{groups} groups do not divide the {channels} {what} channels of "
                    f"stage {number}; pick another scale or group count"
                )


def validator(groups: int):
    """The registry's check of (width, depth, classes) for ``groups`` groups."""

    def validate(width: float, depth: float, num_classes: int) -> None:
        check_scale(width, groups)

    return validate


# The built-in models, registered by name without importing their code (and torch).
def _register(name: str, builder: str, **meta: Any) -> None:
    register_model(name, **meta)(f"mbprof.models.{builder}")


_register(
    "mobilenet_v1",
    "mobilenet_v1:mobilenet_v1",
    family="MobileNetV1",
    summary="Depthwise-separable convolutions; 569M MAdds, 4.2M params at 1.0@224",
    reference="Howard et al. 2017 (arXiv:1704.04861); TF-Slim mobilenet_v1 width rule",
)
_register(
    "mobilenet_v2",
    "mobilenet_v2:mobilenet_v2",
    family="MobileNetV2",
    summary="Inverted residuals with linear bottlenecks; 300M MAdds, 3.5M params at 1.0@224",
    reference="Sandler et al. 2018 (arXiv:1801.04381); torchvision mobilenet_v2 layout",
    has_depth=True,
)
_register(
    "mobilenet_v3_large",
    "mobilenet_v3:mobilenet_v3_large",
    family="MobileNetV3",
    summary="MobileNetV3-Large: SE and hard-swish; 217M MAdds, 5.4M params at 1.0@224",
    reference="Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_large layout",
)
_register(
    "mobilenet_v3_small",
    "mobilenet_v3:mobilenet_v3_small",
    family="MobileNetV3",
    summary="MobileNetV3-Small: SE and hard-swish; 56M MAdds, 2.5M params at 1.0@224",
    reference="Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_small layout",
)
_register(
    "nasnet_a_mobile",
    "nasnet:nasnet_a_mobile",
    family="NASNet-A",
    summary="NASNet-A Mobile 4 @ 1056; 564M MAdds, 5.3M params at 224; width scales F (44)",
    reference="Zoph et al. 2018 (arXiv:1707.07012); TF-Slim build_nasnet_mobile",
    width_min=0.1,
    width_min_inclusive=True,
)
_SHUFFLENET_SUMMARY = {
    1: "ShuffleNet v1, 1 group (no shuffle); width = scale 0.25x..2x",
    3: "ShuffleNet v1, 3 groups; 137M MAdds at 1x, 524M and 5.4M params at 2x (224)",
}
for _groups in GROUPS:
    _register(
        f"shufflenet_v1_g{_groups}",
        f"shufflenet:shufflenet_v1_g{_groups}",
        family="ShuffleNet v1",
        summary=_SHUFFLENET_SUMMARY.get(
            _groups, f"ShuffleNet v1, {_groups} groups; width = scale 0.25x..2x"
        ),
        reference="Zhang et al. 2017 (arXiv:1707.01083); megvii-model/ShuffleNet-Series widths",
        width_min=SCALE_MIN,
        width_min_inclusive=True,
        width_max=SCALE_MAX,
        validate=validator(_groups),
    )
