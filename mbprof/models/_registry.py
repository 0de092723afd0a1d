"""A registry of model builders, torch-free: one decorator to join, one lookup to build.
A builder is ``(width, [depth,] num_classes, **kwargs) -> nn.Module`` or ``"module:function"``
naming one (imported when first built); ``ModelInfo`` says which knob values it accepts."""

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
    meta = dict(locals())

    def decorate(builder: Callable[..., Any] | str) -> Callable[..., Any] | str:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(factory=builder, **meta)
        return builder

    return decorate


def unregister_model(name: str) -> ModelInfo:
    """Remove a registered model (for a model registered for a while: tests, notebooks);
    returns its description. An unknown name raises ``UnknownModelError``."""
    return _REGISTRY.pop(get_model_info(name).name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(".", "")


def get_model_info(name: str) -> ModelInfo:
    if name in _REGISTRY:
        return _REGISTRY[name]
    # Close registered names: 'mobilenetv2' -> mobilenet_v2.
    squashed = {_squash(n): n for n in _REGISTRY}
    close = difflib.get_close_matches(_squash(name), list(squashed), n=3, cutoff=0.6)
    hints = [squashed[_squash(name)]] if _squash(name) in squashed else [squashed[c] for c in close]
    hint = f"; did you mean {' or '.join(hints)}?" if hints else ""
    raise UnknownModelError(
        f"unknown model {name!r}{hint} (see `mbprof models` for the list, or give your own "
        "model as an import path such as mypkg.models:build)"
    )


# ShuffleNet v1's channels, here (torch-free) so that the registry refuses a scale at which a
# group count does not divide a stage's channels before anything is built. The paper's Table
# 1 (Stage2 at 28x28, Stage3, Stage4 at 7x7): units, the first with stride 2, and the output
# channels at 1x for g = 1, 2, 3, 4, 8.
GROUPS = (1, 2, 3, 4, 8)
STAGES = (
    (4, (144, 200, 240, 272, 384)),
    (8, (288, 400, 480, 544, 768)),
    (4, (576, 800, 960, 1088, 1536)),
)


def conv1_channels(scale: float, groups: int) -> int:
    """conv1 width: 12 up to 0.5x, 24 up to 1.5x, 48 above, rounded up to a multiple of g."""
    base = 12 if scale <= 0.5 else 24 if scale <= 1.5 else 48
    return math.ceil(base / groups) * groups


def stage_channels(scale: float, groups: int) -> tuple[int, ...]:
    return tuple(int(round(out[GROUPS.index(groups)] * scale)) for _, out in STAGES)


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


# The built-in models, registered by name without importing their code (and torch).
def _register(name: str, builder: str, **meta: Any) -> None:
    register_model(name, **meta)(f"mbprof.models.{builder}")


_register(
    "mobilenet_v1",
    "mobilenet_v1:MobileNetV1",
    family="MobileNetV1",
    summary="Depthwise-separable convolutions; 569M MAdds, 4.2M params at 1.0@224",
    reference="Howard et al. 2017 (arXiv:1704.04861); TF-Slim mobilenet_v1 width rule",
)
_register(
    "mobilenet_v2",
    "mobilenet_v2:MobileNetV2",
    family="MobileNetV2",
    summary="Inverted residuals with linear bottlenecks; 300M MAdds, 3.5M params at 1.0@224",
    reference="Sandler et al. 2018 (arXiv:1801.04381); torchvision mobilenet_v2 layout",
    has_depth=True,
)
for _size, _figures in (("large", "217M MAdds, 5.4M"), ("small", "56M MAdds, 2.5M")):
    _register(
        f"mobilenet_v3_{_size}",
        f"mobilenet_v3:mobilenet_v3_{_size}",
        family="MobileNetV3",
        summary=f"MobileNetV3-{_size.title()}: SE and hard-swish; {_figures} params at 1.0@224",
        reference=f"Howard et al. 2019 (arXiv:1905.02244); torchvision mobilenet_v3_{_size} layout",
    )
_register(
    "nasnet_a_mobile",
    "nasnet:NASNetAMobile",
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
        width_min=0.25,
        width_min_inclusive=True,
        width_max=2.0,
        validate=lambda width, *_, groups=_groups: check_scale(width, groups),
    )
