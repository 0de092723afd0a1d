"""MobileNetV3 Large and Small (Howard et al. 2019) with torchvision's module names (its
checkpoints load) and TF-Slim's width rule (docs/models.md): at 1.0, torchvision's model."""

from __future__ import annotations

import functools
from collections import namedtuple

import torch
from torch import nn

from mbprof.models._layers import (
    ConvBNAct,
    InvertedResidual,
    PooledClassifier,
    init_weights,
    make_divisible,
)

# The paper's Tables 1 and 2 (activation RE = ReLU, HS = hard-swish), after a 16-channel 3x3
# stride-2 HS stem.
Block = namedtuple("Block", "kernel expanded out se act stride")
LARGE: tuple[Block, ...] = (
    Block(3, 16, 16, False, "RE", 1),
    Block(3, 64, 24, False, "RE", 2),
    Block(3, 72, 24, False, "RE", 1),
    Block(5, 72, 40, True, "RE", 2),
    Block(5, 120, 40, True, "RE", 1),
    Block(5, 120, 40, True, "RE", 1),
    Block(3, 240, 80, False, "HS", 2),
    Block(3, 200, 80, False, "HS", 1),
    Block(3, 184, 80, False, "HS", 1),
    Block(3, 184, 80, False, "HS", 1),
    Block(3, 480, 112, True, "HS", 1),
    Block(3, 672, 112, True, "HS", 1),
    Block(5, 672, 160, True, "HS", 2),
    Block(5, 960, 160, True, "HS", 1),
    Block(5, 960, 160, True, "HS", 1),
)
SMALL: tuple[Block, ...] = (
    Block(3, 16, 16, True, "RE", 2),
    Block(3, 72, 24, False, "RE", 2),
    Block(3, 88, 24, False, "RE", 1),
    Block(5, 96, 40, True, "HS", 2),
    Block(5, 240, 40, True, "HS", 1),
    Block(5, 240, 40, True, "HS", 1),
    Block(5, 120, 48, True, "HS", 1),
    Block(5, 144, 48, True, "HS", 1),
    Block(5, 288, 96, True, "HS", 2),
    Block(5, 576, 96, True, "HS", 1),
    Block(5, 576, 96, True, "HS", 1),
)
ACTIVATIONS: dict[str, type[nn.Module]] = {"RE": nn.ReLU, "HS": nn.Hardswish}


class SqueezeExcitation(nn.Module):
    """Global average pool -> 1x1 conv (bias) -> ReLU -> 1x1 conv (bias) -> hard-sigmoid,
    and the input scaled by the result, channel by channel."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.relu(self.fc1(scale))))


class MobileNetV3(PooledClassifier):
    def __init__(
        self, arch: str = "large", width: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
    ) -> None:
        super().__init__()
        blocks = LARGE if arch == "large" else SMALL
        channels, paper_in = make_divisible(16 * width), 16
        features: list[nn.Module] = [ConvBNAct(3, channels, 3, 2, activation=nn.Hardswish)]
        for kernel, expanded, out, se, act, stride in blocks:
            # 1x1 expansion (none when expanded == in) -> depthwise -> SE -> linear 1x1.
            hidden = make_divisible(channels * expanded / paper_in)
            out_channels, act = make_divisible(out * width), ACTIVATIONS[act]
            layers = [ConvBNAct(channels, hidden, 1, activation=act)] if hidden != channels else []
            layers.append(ConvBNAct(hidden, hidden, kernel, stride, hidden, activation=act))
            if se:
                layers.append(SqueezeExcitation(hidden, make_divisible(hidden // 4)))
            layers.append(ConvBNAct(hidden, out_channels, 1, activation=None))
            features.append(InvertedResidual("block", layers, channels, out_channels, stride))
            channels, paper_in = out_channels, out
        last_conv = make_divisible(6 * blocks[-1][2] * width)  # 960 / 576 at width 1.0
        features.append(ConvBNAct(channels, last_conv, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*features)
        # The paper's 1x1 conv (no BN) after pooling, as a Linear: the same costs.
        last = make_divisible((1280 if arch == "large" else 1024) * max(1.0, width))
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, last),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last, num_classes),
        )
        init_weights(self)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):  # torchvision's (and TF's) settings for V3
                module.eps, module.momentum = 1e-3, 0.01


mobilenet_v3_large = functools.partial(MobileNetV3, "large")
mobilenet_v3_small = functools.partial(MobileNetV3, "small")
