"""Small models for the activation memory tests: each shows one rule of the analysis."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Stem(nn.Module):
    """A counted first tensor: conv 3 -> c, stride 1, so that sizes stay H x W."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 1, bias=False)

    def forward(self, x):
        return self.conv(x)


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(6)
        self.gconv = nn.Conv2d(6, 12, 1, groups=3, bias=False)
        self.dw = nn.Conv2d(12, 12, 3, 1, 1, groups=12, bias=False)
        self.pw = nn.Conv2d(12, 6, 1, groups=3, bias=False)

    def forward(self, x):
        x = self.stem(x)
        y = channel_shuffle(F.relu(self.gconv(x)), 3)
        return F.relu(x + self.pw(self.dw(y)))


class ConcatCell(nn.Module):
    """Three branches of the same input, concatenated (NASNet-style)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(4)
        self.a = nn.Conv2d(4, 8, 1)
        self.b = nn.Conv2d(4, 8, 3, padding=1)
        self.c = nn.Conv2d(4, 8, 1)
        self.head = nn.Conv2d(24, 4, 1)

    def forward(self, x):
        x = self.stem(x)
        pooled = F.avg_pool2d(self.c(x), 3, 1, 1)
        return self.head(torch.cat([self.a(x), self.b(x), pooled], 1))


class SqueezeExcite(nn.Module):
    """A MobileNetV3-style block: expand, depthwise, squeeze-excitation, project, residual."""

    def __init__(self, c: int = 8, e: int = 32) -> None:
        super().__init__()
        self.stem = Stem(c)
        self.expand = nn.Sequential(
            nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.Hardswish()
        )
        self.dw = nn.Sequential(
            nn.Conv2d(e, e, 3, 1, 1, groups=e, bias=False), nn.BatchNorm2d(e), nn.Hardswish()
        )
        self.fc1, self.fc2 = nn.Conv2d(e, 8, 1), nn.Conv2d(8, e, 1)
        self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        x = self.stem(x)
        h = self.dw(self.expand(x))
        gate = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(h, 1)))))
        return x + self.project(h * gate)


class ShortcutOfInner(nn.Module):
    """The expanded tensor is also concatenated: it must exist whole, so no chunking."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(4)
        self.expand = nn.Conv2d(4, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16)
        self.project = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        x = self.stem(x)
        h = F.relu(self.expand(x))
        return torch.cat([self.project(self.dw(h)), h], 1)


class InPlaceResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem(4)
        self.a = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.stem(x)
        y += self.a(y)
        return y.relu_()


class DataDependent(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum().item() > 0 else x
