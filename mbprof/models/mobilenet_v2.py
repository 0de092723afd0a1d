"""MobileNetV2 (Sandler et al. 2018) with torchvision's module names, so its checkpoints load."""

from __future__ import annotations

import math

from torch import nn

from mbprof.models._layers import (
    ConvBNAct,
    InvertedResidual,
    PooledClassifier,
    init_weights,
    make_divisible,
)

# The paper's Table 2 (expansion t, channels c, repeats n, stride s), after the 32-channel stem.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
STAGES += ((6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(PooledClassifier):
    """MobileNetV2. ``fix_stem_head=True`` keeps the 32-channel stem and 1280-channel head
    at every width, as timm's mobilenetv2_110d and _120d do."""

    def __init__(
        self,
        width: float = 1.0,
        depth: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.2,
        fix_stem_head: bool = False,
    ) -> None:
        super().__init__()
        channels = 32 if fix_stem_head else make_divisible(32 * width)
        # The head is not reduced below width 1.0 (the paper's "except the very last layer").
        head = make_divisible(1280 * (1.0 if fix_stem_head else max(1.0, width)))
        features: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2)]
        for index, (t, c, n, s) in enumerate(STAGES):
            # timm's depth rule: ceil(n * depth), but the first and last stages keep their block.
            repeats = n if index in (0, len(STAGES) - 1) else math.ceil(n * depth)
            for block in range(repeats):
                out, hidden = make_divisible(c * width), channels * t
                stride = s if block == 0 else 1
                # 1x1 expansion (none when t = 1) -> 3x3 depthwise -> linear 1x1 projection.
                layers = [ConvBNAct(channels, hidden, 1)] if t != 1 else []
                layers += [
                    ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden),
                    nn.Conv2d(hidden, out, 1, bias=False),
                    nn.BatchNorm2d(out),
                ]
                features.append(InvertedResidual("conv", layers, channels, out, stride))
                channels = out
        features.append(ConvBNAct(channels, head, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(head, num_classes))
        init_weights(self)
