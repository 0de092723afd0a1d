"""MobileNetV1 (Howard et al. 2017) with TF-Slim's width rule (``slim_depth``: no rounding to
8); the last depthwise layer has stride 1, as in the reference code (the paper's table: 2)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from mbprof.models._layers import ConvBNAct, PooledClassifier, init_weights

# (channels, stride) of each depthwise 3x3 + pointwise 1x1 layer, after a 32-channel stem.
LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5)
LAYERS += ((1024, 2), (1024, 1))


def slim_depth(channels: int, width: float, min_depth: int = 8) -> int:
    """TF-Slim's ``depth(d) = max(int(d * depth_multiplier), min_depth)``."""
    return max(int(channels * width), min_depth)


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        dw = ConvBNAct(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        super().__init__(OrderedDict(dw=dw, pw=ConvBNAct(in_channels, out_channels, 1)))


class MobileNetV1(PooledClassifier):
    def __init__(self, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.001) -> None:
        super().__init__()
        channels = slim_depth(32, width)
        features: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2)]
        for out, stride in LAYERS:
            features.append(DepthwiseSeparable(channels, slim_depth(out, width), stride))
            channels = slim_depth(out, width)
        self.features = nn.Sequential(*features)
        # TF-Slim's logits are a 1x1 conv with bias on the pooled map: the same as a Linear
        # (dropout keep_prob 0.999 as in TF-Slim).
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(channels, num_classes))
        init_weights(self)
