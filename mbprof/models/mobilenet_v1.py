"""MobileNetV1 (Howard et al. 2017), with TF-Slim's width rule.

TF-Slim scales every layer, the stem and the 1024-channel head included, by
``max(int(c * width), 8)``: truncation with a floor of 8, no rounding to 8.
The last depthwise layer has stride 1, as in the reference code (the paper's
table shows 2, which would leave a 4x4 map at 224).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mbprof.models._layers import ConvBNAct, PooledClassifier, init_weights


@dataclass(frozen=True)
class SeparableLayer:
    """A depthwise 3x3 (with ``stride``) then a pointwise 1x1 to ``channels``."""

    channels: int
    stride: int


STEM_CHANNELS = 32
LAYERS: tuple[SeparableLayer, ...] = (
    SeparableLayer(64, 1),
    SeparableLayer(128, 2),
    SeparableLayer(128, 1),
    SeparableLayer(256, 2),
    SeparableLayer(256, 1),
    SeparableLayer(512, 2),
    *(SeparableLayer(512, 1) for _ in range(5)),
    SeparableLayer(1024, 2),
    SeparableLayer(1024, 1),
)


def slim_depth(channels: int, width: float, min_depth: int = 8) -> int:
    """TF-Slim's ``depth(d) = max(int(d * depth_multiplier), min_depth)``."""
    return max(int(channels * width), min_depth)


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBNAct(
            in_channels, in_channels, kernel_size=3, stride=stride, groups=in_channels
        )
        self.pw = ConvBNAct(in_channels, out_channels, kernel_size=1)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(PooledClassifier):
    def __init__(self, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.001) -> None:
        super().__init__()
        stem = slim_depth(STEM_CHANNELS, width)
        features: list[nn.Module] = [ConvBNAct(3, stem, kernel_size=3, stride=2)]
        in_channels = stem
        for layer in LAYERS:
            out_channels = slim_depth(layer.channels, width)
            features.append(DepthwiseSeparable(in_channels, out_channels, layer.stride))
            in_channels = out_channels
        self.features = nn.Sequential(*features)
        self.last_channel = in_channels
        # TF-Slim's logits are a 1x1 conv with bias on the pooled map: the same as a Linear.
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(in_channels, num_classes))
        init_weights(self)


def mobilenet_v1(
    width: float = 1.0, num_classes: int = 1000, dropout: float = 0.001
) -> MobileNetV1:
    """MobileNetV1 with TF-Slim's channel truncation (dropout keep_prob 0.999 as in TF-Slim)."""
    return MobileNetV1(width=width, num_classes=num_classes, dropout=dropout)
