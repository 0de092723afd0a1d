"""MobileNetV2 (Sandler et al. 2018, "Inverted Residuals and Linear Bottlenecks").

Module names follow torchvision's ``mobilenet_v2`` (features.0.0.weight,
features.1.conv.0.0.weight, ..., classifier.1.weight), so its checkpoints load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mbprof.models._layers import ConvBNAct, PooledClassifier, init_weights, make_divisible


@dataclass(frozen=True)
class Stage:
    """One row of the paper's Table 2: ``repeats`` inverted-residual blocks with
    expansion factor ``expansion``, ``channels`` outputs, the first with ``stride``."""

    expansion: int
    channels: int
    repeats: int
    stride: int


# The paper's Table 2 (t, c, n, s), after the 32-channel stem.
STAGES: tuple[Stage, ...] = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when t = 1) -> 3x3 depthwise -> linear 1x1 projection,
    with a shortcut when stride is 1 and the channel counts match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNAct(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(PooledClassifier):
    def __init__(
        self,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.2,
        fix_stem_head: bool = False,
        stages: tuple[Stage, ...] = STAGES,
    ) -> None:
        super().__init__()
        stem = STEM_CHANNELS if fix_stem_head else make_divisible(STEM_CHANNELS * width)
        # The head is not reduced below width 1.0 (the paper's "except the very last layer").
        head_width = 1.0 if fix_stem_head else max(1.0, width)
        self.last_channel = make_divisible(HEAD_CHANNELS * head_width)

        features: list[nn.Module] = [ConvBNAct(3, stem, kernel_size=3, stride=2)]
        in_channels = stem
        for index, stage in enumerate(stages):
            out_channels = make_divisible(stage.channels * width)
            for block in range(stage_repeats(stage, depth, index, len(stages))):
                stride = stage.stride if block == 0 else 1
                features.append(
                    InvertedResidual(in_channels, out_channels, stride, stage.expansion)
                )
                in_channels = out_channels
        features.append(ConvBNAct(in_channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes)
        )
        init_weights(self)


def stage_repeats(stage: Stage, depth: float, index: int, count: int) -> int:
    """timm's depth rule: ceil(n * depth), except that the first and last stages keep
    their single block."""
    if index in (0, count - 1):
        return stage.repeats
    return math.ceil(stage.repeats * depth)


def mobilenet_v2(
    width: float = 1.0,
    depth: float = 1.0,
    num_classes: int = 1000,
    dropout: float = 0.2,
    fix_stem_head: bool = False,
) -> MobileNetV2:
    """MobileNetV2. ``fix_stem_head=True`` keeps the 32-channel stem and 1280-channel head
    at every width, as timm's mobilenetv2_110d and _120d do."""
    return MobileNetV2(
        width=width,
        depth=depth,
        num_classes=num_classes,
        dropout=dropout,
        fix_stem_head=fix_stem_head,
    )
