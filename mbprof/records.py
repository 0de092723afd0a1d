"""Plain records that flow from the analyses to the renderers.

Numbers stay numbers here (integers with their unit in the field name); formatting
happens only in ``mbprof.render``. This module imports nothing else from mbprof.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

IMAGE_CHANNELS = 3


@dataclass(frozen=True)
class ModelSpec:
    """One configuration: which model, at which width, depth, resolution and classes.

    ``resolution`` is the input image's (height, width) in pixels. ``kwargs`` holds
    extra keyword arguments for the model's builder as sorted (key, value) pairs so
    that the spec stays hashable.
    """

    model: str
    width: float = 1.0
    depth: float = 1.0
    resolution: tuple[int, int] = (224, 224)
    num_classes: int = 1000
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def res_label(self) -> str:
        """``224`` for a square input, ``160x224`` (height x width) otherwise."""
        h, w = self.resolution
        return str(h) if h == w else f"{h}x{w}"

    @property
    def label(self) -> str:
        """Short name such as ``mobilenet_v2 1.0@224`` (``d1.2`` added when depth != 1)."""
        depth = "" if self.depth == 1.0 else f" depth {self.depth:g}"
        width = f"{self.width:g}" if "." in f"{self.width:g}" else f"{self.width:g}.0"
        return f"{self.model} {width}@{self.res_label}{depth}"

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, IMAGE_CHANNELS, *self.resolution)

    def builder_kwargs(self) -> dict[str, Any]:
        return dict(self.kwargs)


@dataclass(frozen=True)
class LayerRow:
    """Cost of one module, counting only the ops it runs itself (not its children's).

    ``madds`` are multiply-accumulates of convolutions and fully connected layers;
    ``other_flops`` is fvcore's estimate for the other ops it knows (batch norm,
    pooling, upsampling, normalisation); ``params`` are the module's own parameters.
    """

    path: str
    type: str
    madds: int
    other_flops: int
    params: int
    in_channels: int | None = None
    out_channels: int | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    groups: int | None = None
    out_hw: tuple[int, int] | None = None


def _frozen(mapping: Mapping[str, int] | None = None) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class CountReport:
    """MAdds and parameters of one configuration, in total and per layer.

    madds:        multiply-accumulates of convolutions and fully connected layers
                  (the papers' convention), batch 1.
    params:       every parameter tensor's elements (weights, biases, batch-norm
                  affine), as ``sum(p.numel() for p in model.parameters())``.
    other_flops:  fvcore's estimates for batch norm, pooling, upsampling and
                  normalisation layers, kept apart from ``madds``.
    uncounted_ops: ops that ran but have no cost estimate (activations, additions,
                  concatenations, reshapes), with how many times each ran.
    """

    madds: int
    params: int
    other_flops: int
    layers: tuple[LayerRow, ...]
    other_flops_by_op: Mapping[str, int] = field(default_factory=_frozen)
    uncounted_ops: Mapping[str, int] = field(default_factory=_frozen)


@dataclass(frozen=True)
class Profile:
    """Everything mbprof knows about one configuration."""

    spec: ModelSpec
    counts: CountReport
