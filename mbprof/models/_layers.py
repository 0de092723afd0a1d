"""Building blocks shared by the model files."""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float) -> int:
    """Round a channel count to a multiple of 8 as TF-Slim, torchvision and timm do: to the
    nearest multiple, at least 8, and never more than 10% below ``value``."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


class ConvBNAct(nn.Sequential):
    """conv -> batch norm -> activation, as indices 0, 1, 2 (torchvision's
    Conv2dNormActivation layout, so that its checkpoints' keys line up)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU6,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            *([activation(inplace=True)] if activation else []),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 and V3's block: ``layers`` as the Sequential ``body`` (torchvision's
    ``conv`` or ``block``), with a shortcut when the stride is 1 and the channels match."""

    def __init__(
        self, body: str, layers: list[nn.Module], in_channels: int, out_channels: int, stride: int
    ) -> None:
        super().__init__()
        self.body = body
        self.add_module(body, nn.Sequential(*layers))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = getattr(self, self.body)(x)
        return x + y if self.use_res_connect else y


class PooledClassifier(nn.Module):
    """A network whose ``features`` end in global average pooling and a ``classifier`` on
    the pooled vector (MobileNetV1, V2 and V3): their forward pass, written once."""

    features: nn.Module
    classifier: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def init_weights(model: nn.Module) -> None:
    """torchvision's initialisation for MobileNets (random weights are fine for costs,
    but a sensible scale keeps activations finite in latency runs)."""
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.is_meta:
            continue  # a shape-only model (memory estimates): random init means nothing there
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
        if isinstance(getattr(module, "bias", None), torch.Tensor):
            nn.init.zeros_(module.bias)
