"""ShuffleNet v1 (Zhang et al. 2017), g = 1, 2, 3, 4, 8 groups, at scales 0.25x to 2x
(docs/models.md); no bias in the classifier, as the code whose figures are published."""

from __future__ import annotations

import functools

import torch
from torch import nn

from mbprof.models import GROUPS, STAGES, conv1_channels, stage_channels
from mbprof.models.mobilenet import ConvBNAct, init_weights


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g * n, H, W) -> view as (g, n) channels, transpose to (n, g), flatten back."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ShuffleUnit(nn.Module):
    """1x1 group conv -> shuffle -> 3x3 depthwise -> 1x1 group conv (bottleneck out / 4),
    added to the input (stride 1) or concatenated with its 3x3 average pool (stride 2)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, group_first: bool
    ) -> None:
        super().__init__()
        self.stride, self.groups, mid = stride, groups, out_channels // 4
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
    def __init__(self, groups: int = 3, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = conv1_channels(width, groups)
        self.conv1 = ConvBNAct(3, channels, 3, stride=2, activation=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for index, out in enumerate(stage_channels(width, groups)):
            stage = []
            for u in range(STAGES[index][0]):
                # The very first pointwise conv (on conv1's few channels) is not grouped.
                stage.append(ShuffleUnit(channels, out, 2 if u == 0 else 1, groups, index + u > 0))
                channels = out
            self.add_module(f"stage{index + 2}", nn.Sequential(*stage))
        self.fc = nn.Linear(channels, num_classes, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


shufflenet_v1_g1, shufflenet_v1_g2, shufflenet_v1_g3, shufflenet_v1_g4, shufflenet_v1_g8 = (
    functools.partial(ShuffleNetV1, groups) for groups in GROUPS
)
