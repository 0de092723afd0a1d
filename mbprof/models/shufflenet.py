"""ShuffleNet v1 (Zhang et al. 2017, "An Extremely Efficient Convolutional Neural Network for
Mobile Devices"), g = 1, 2, 3, 4, 8 groups, at any scale from 0.25x to 2x.

The scale (mbprof's width) multiplies the stage channels of the paper's Table 1. conv1 has
12 channels up to 0.5x, 24 up to 1.5x and 48 above, as in the reference code
(megvii-model/ShuffleNet-Series), rounded up to a multiple of g (that code's g=8 0.5x uses
16). A scale whose channels the group count does not divide is refused: every grouped 1x1
conv and the channel shuffle need ``channels % g == 0``. The classifier has no bias, as in
the reference code whose figures are published (524M, 5.4M at 2x, g=3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mbprof.core.errors import MbprofError
from mbprof.models._layers import ConvBNAct, init_weights
from mbprof.models._registry import register_model

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


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g * n, H, W) -> view as (g, n) channels, transpose to (n, g), flatten back."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ShuffleUnit(nn.Module):
    """1x1 group conv + BN + ReLU -> channel shuffle -> 3x3 depthwise (stride) + BN ->
    1x1 group conv + BN. Stride 1: add the input, then ReLU. Stride 2: concatenate a 3x3
    average pool (stride 2) of the input with the branch, then ReLU; the branch makes the
    ``out - in`` new channels. Bottleneck width = out / 4."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, group_first: bool
    ) -> None:
        super().__init__()
        self.stride = stride
        self.groups = groups
        mid = out_channels // 4
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        first_groups = groups if group_first else 1
        self.compress = ConvBNAct(in_channels, mid, 1, groups=first_groups, activation=nn.ReLU)
        self.depthwise = ConvBNAct(mid, mid, 3, stride=stride, groups=mid, activation=None)
        self.expand = ConvBNAct(mid, branch_out, 1, groups=groups, activation=None)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.compress(x)
        if self.groups > 1:
            branch = channel_shuffle(branch, self.groups)
        branch = self.expand(self.depthwise(branch))
        if self.stride == 2:
            return torch.relu(torch.cat((self.shortcut(x), branch), 1))
        return torch.relu(x + branch)


class ShuffleNetV1(nn.Module):
    def __init__(self, groups: int = 3, scale: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        if groups not in GROUPS:
            raise MbprofError(f"ShuffleNet v1 groups {groups} is not one of {GROUPS}")
        check_scale(scale, groups)
        self.groups = groups
        stem = conv1_channels(scale, groups)
        self.conv1 = ConvBNAct(3, stem, 3, stride=2, activation=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages: list[nn.Module] = []
        in_channels = stem
        for index, (stage, out_channels) in enumerate(
            zip(STAGES, stage_channels(scale, groups), strict=True)
        ):
            units: list[nn.Module] = []
            for unit in range(stage.units):
                # The very first pointwise conv (on conv1's few channels) is not grouped.
                group_first = not (index == 0 and unit == 0)
                stride = 2 if unit == 0 else 1
                units.append(ShuffleUnit(in_channels, out_channels, stride, groups, group_first))
                in_channels = out_channels
            stages.append(nn.Sequential(*units))
        self.stage2, self.stage3, self.stage4 = stages
        self.last_channel = in_channels
        self.fc = nn.Linear(in_channels, num_classes, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def _validator(groups: int):
    def validate(width: float, depth: float, num_classes: int) -> None:
        check_scale(width, groups)

    return validate


_COMMON = dict(
    family="ShuffleNet v1",
    reference="Zhang et al. 2017 (arXiv:1707.01083); megvii-model/ShuffleNet-Series widths",
    width_min=SCALE_MIN,
    width_min_inclusive=True,
    width_max=SCALE_MAX,
)


@register_model(
    "shufflenet_v1_g1",
    summary="ShuffleNet v1, 1 group (no shuffle); width = scale 0.25x..2x",
    validate=_validator(1),
    **_COMMON,
)
def shufflenet_v1_g1(width: float = 1.0, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(groups=1, scale=width, num_classes=num_classes)


@register_model(
    "shufflenet_v1_g2",
    summary="ShuffleNet v1, 2 groups; width = scale 0.25x..2x",
    validate=_validator(2),
    **_COMMON,
)
def shufflenet_v1_g2(width: float = 1.0, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(groups=2, scale=width, num_classes=num_classes)


@register_model(
    "shufflenet_v1_g3",
    summary="ShuffleNet v1, 3 groups; 137M MAdds at 1x, 524M and 5.4M params at 2x (224)",
    validate=_validator(3),
    **_COMMON,
)
def shufflenet_v1_g3(width: float = 1.0, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(groups=3, scale=width, num_classes=num_classes)


@register_model(
    "shufflenet_v1_g4",
    summary="ShuffleNet v1, 4 groups; width = scale 0.25x..2x",
    validate=_validator(4),
    **_COMMON,
)
def shufflenet_v1_g4(width: float = 1.0, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(groups=4, scale=width, num_classes=num_classes)


@register_model(
    "shufflenet_v1_g8",
    summary="ShuffleNet v1, 8 groups; width = scale 0.25x..2x",
    validate=_validator(8),
    **_COMMON,
)
def shufflenet_v1_g8(width: float = 1.0, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(groups=8, scale=width, num_classes=num_classes)
