"""MobileNetV3 Large and Small (Howard et al. 2019, "Searching for MobileNetV3").

Module names follow torchvision's ``mobilenet_v3_large`` / ``_small`` (features.0.0.weight,
features.1.block.0.0.weight, features.4.block.2.fc1.weight, classifier.3.weight, ...), so
its checkpoints load, and the parameter counts are torchvision's (5,483,032 and 2,542,856).

Width follows TF-Slim (whose 0.75 checkpoints are the published ones: 155M / 4.0M for Large,
which torchvision's rule misses by 15M): outputs, the stem and the last 1x1 conv before
pooling become make_divisible(c * width); a block's expanded width is make_divisible(its
actual input channels x the paper's expansion ratio), so it follows the rounded input; the
1280 / 1024 layer after pooling is not reduced below width 1.0 (make_divisible(c * max(1,
width)), as MobileNetV2's head); the squeeze-and-excitation bottleneck is
make_divisible(expanded / 4). At width 1.0 this is exactly torchvision's model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mbprof.models._layers import ConvBNAct, PooledClassifier, init_weights, make_divisible

BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # torchvision's (and TF's) batch-norm settings for V3
STEM_CHANNELS = 16


@dataclass(frozen=True)
class Block:
    """One row of the paper's Tables 1 and 2: an inverted residual with a ``kernel`` x
    ``kernel`` depthwise conv on ``expanded`` channels, ``out`` outputs, squeeze-and-excite
    (``se``), activation ``act`` ("RE" = ReLU, "HS" = hard-swish) and ``stride``."""

    kernel: int
    expanded: int
    out: int
    se: bool
    act: str
    stride: int


# kernel, expanded, out, SE, activation, stride (after a 16-channel 3x3 stride-2 HS stem)
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
LAST_CHANNELS = {"large": 1280, "small": 1024}  # the 1x1 conv after pooling (no BN)
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
        scale = self.gate(self.fc2(self.relu(self.fc1(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    """1x1 expansion (none when expanded == in) -> depthwise -> SE -> linear 1x1 projection,
    with a shortcut when the stride is 1 and the channel counts match."""

    def __init__(self, in_channels: int, expanded: int, out_channels: int, block: Block) -> None:
        super().__init__()
        act = ACTIVATIONS[block.act]
        self.use_res_connect = block.stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvBNAct(in_channels, expanded, 1, activation=act))
        layers.append(
            ConvBNAct(
                expanded,
                expanded,
                block.kernel,
                stride=block.stride,
                groups=expanded,
                activation=act,
            )
        )
        if block.se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4)))
        layers.append(ConvBNAct(expanded, out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.block(x)
        return self.block(x)


class MobileNetV3(PooledClassifier):
    def __init__(
        self,
        arch: str = "large",
        width: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        blocks = LARGE if arch == "large" else SMALL
        stem = make_divisible(STEM_CHANNELS * width)
        features: list[nn.Module] = [ConvBNAct(3, stem, 3, stride=2, activation=nn.Hardswish)]
        in_channels, paper_in = stem, STEM_CHANNELS
        for block in blocks:
            expanded = make_divisible(in_channels * block.expanded / paper_in)
            out_channels = make_divisible(block.out * width)
            features.append(InvertedResidual(in_channels, expanded, out_channels, block))
            in_channels, paper_in = out_channels, block.out
        last_conv = make_divisible(6 * blocks[-1].out * width)  # 960 / 576 at width 1.0
        features.append(ConvBNAct(in_channels, last_conv, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*features)
        self.last_channel = make_divisible(LAST_CHANNELS[arch] * max(1.0, width))
        # The paper's 1x1 conv (no BN) on the pooled map, as a Linear: the same costs.
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, self.last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(self.last_channel, num_classes),
        )
        init_weights(self)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps, module.momentum = BN_EPS, BN_MOMENTUM


def mobilenet_v3_large(
    width: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> MobileNetV3:
    return MobileNetV3("large", width=width, num_classes=num_classes, dropout=dropout)


def mobilenet_v3_small(
    width: float = 1.0, num_classes: int = 1000, dropout: float = 0.2
) -> MobileNetV3:
    return MobileNetV3("small", width=width, num_classes=num_classes, dropout=dropout)
