"""Small networks that reproduce, one each, the ways real-world models (torchvision's) defeat a
naive profiler, so that CI covers them without torchvision. Given to mbprof by import path
(``tests.support.real_world_models:NAME``), as a user would.

Each docstring names the torchvision model whose pattern it copies."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FIXED_SIDE = 96


def _head(channels: int, num_classes: int) -> nn.Linear:
    return nn.Linear(channels, num_classes)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class ArangeWidths(nn.Module):
    """RegNet: the stage widths are computed with tensors and read back with ``.tolist()``
    while the model is built (a meta tensor has no data to read back)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        widths = (torch.arange(3) * 8 + 8).tolist()  # [8, 16, 24]
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.fc = _head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_pool(self.features(x)))


class LiteralWidths(ArangeWidths):
    """ArangeWidths' architecture with its widths written out: builds on the meta device."""

    def __init__(self, num_classes: int = 10) -> None:
        nn.Module.__init__(self)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 24, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = _head(24, num_classes)


class ReadsParameter(nn.Module):
    """A builder that reads one of its own parameters' values: it runs neither on the meta
    device nor with its parameters moved there, only for real."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), 2.0))
        channels = 4 * int(self.scale.item())  # 8
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc = _head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_pool(self.conv(x) * self.scale))


class FixedInput(nn.Module):
    """ViT: the forward pass asserts its input size (``torch._assert``), so a low-resolution
    probe is refused."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 8, stride=8)
        self.fc = _head(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[-2]
        torch._assert(
            height == FIXED_SIDE, f"Wrong image height! Expected {FIXED_SIDE} but got {height}!"
        )
        return self.fc(_pool(self.patch(x)))


class KernelOutgrowsProbe(nn.Module):
    """Inception v3 / MaxViT: at a 64x64 input the maps shrink below a kernel (a RuntimeError,
    not an assertion); at 160x160 they do not."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.down = nn.Sequential(*(nn.Conv2d(c, 8, 3, stride=2, padding=1) for c in (3, 8, 8, 8)))
        self.wide = nn.Conv2d(8, 16, 7)  # needs maps of 7x7 at least: 112x112 and more
        self.fc = _head(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(_pool(self.wide(self.down(x))))


class FixedInputReadsValues(FixedInput):
    """FixedInput that also branches on a tensor's value: it refuses the probe and cannot run
    on the meta device either, so it is sized by a real forward pass, bounded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.patch(x)
        torch._assert(x.shape[-2] == FIXED_SIDE, "Wrong image height!")
        if y.sum() > 1e30:  # a value read: no meta tensor has one
            y = y * 0.5
        return self.fc(_pool(y))


class BranchesOnValues(nn.Module):
    """Data-dependent control flow: ``refine`` runs only when the features are positive on
    average, which an all-zeros input's are not (the stem has no bias)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.refine = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = _head(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        if y.mean() > 0:
            y = self.refine(y)
        return self.fc(_pool(y))


class ChecksTensor(nn.Module):
    """``torch._check`` given a tensor: torch itself refuses it (``cond must be a bool``), as
    it does in eager PyTorch."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = _head(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._check(x.abs().sum() >= 0)
        return self.fc(_pool(self.conv(x)))


class AssertsTensor(ChecksTensor):
    """``torch._assert`` given a tensor: allowed (and traced) by torch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.abs().sum() >= 0, "negative")
        return self.fc(_pool(self.conv(x)))


class AuxiliaryHead(nn.Module):
    """GoogLeNet / Inception v3: an auxiliary classifier that only training mode calls."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.aux = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU())
        self.aux_fc = nn.Linear(32, num_classes)
        self.fc = _head(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = self.stem(x)
        logits = self.fc(_pool(y))
        if self.training:
            return logits, self.aux_fc(_pool(self.aux(y)))
        return logits


class FunctionalUse(nn.Module):
    """Swin / ViT attention: ``qkv`` and ``proj`` are never called; their weights are read
    through ``F.linear``. The attention itself is fused (``scaled_dot_product_attention``)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 8, stride=8)
        self.qkv = nn.Linear(16, 48)
        self.proj = nn.Linear(16, 16)
        self.fc = _head(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (N, L, 16)
        qkv = F.linear(tokens, self.qkv.weight, self.qkv.bias)
        q, k, v = (t.unflatten(-1, (2, 8)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        out = F.linear(attended, self.proj.weight, self.proj.bias)
        return self.fc(out.mean(1))


class MultiHeadAttention(nn.Module):
    """ViT's encoder block: ``nn.MultiheadAttention`` (fused attention; ``out_proj`` is read
    through ``F.multi_head_attention_forward`` without being called)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 32, 8, stride=8)
        self.attention = nn.MultiheadAttention(32, 4, batch_first=True)
        self.fc = _head(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        attended, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.fc(attended.mean(1))
