"""MobileNetV1 (Howard et al. 2017), V2 (Sandler et al. 2018) and V3 (Howard et al. 2019), and
the blocks they share; V2 and V3 with torchvision's module names, so that its checkpoints load.
Their width rules: docs/models.md."""

from __future__ import annotations

import functools
import math
from collections import OrderedDict, namedtuple

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


# (channels, stride) of each depthwise 3x3 + pointwise 1x1 layer, after a 32-channel stem.
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5)
V1_LAYERS += ((1024, 2), (1024, 1))


def slim_depth(channels: int, width: float, min_depth: int = 8) -> int:
    """TF-Slim's ``depth(d) = max(int(d * depth_multiplier), min_depth)``."""
    return max(int(channels * width), min_depth)


class DepthwiseSeparable(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        dw = ConvBNAct(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        super().__init__(OrderedDict(dw=dw, pw=ConvBNAct(in_channels, out_channels, 1)))


class MobileNetV1(PooledClassifier):
    """TF-Slim's width rule (``slim_depth``: no rounding to 8); the last depthwise layer has
    stride 1, as in the reference code (the paper's table: 2)."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.001) -> None:
        super().__init__()
        channels = slim_depth(32, width)
        features: list[nn.Module] = [ConvBNAct(3, channels, 3, stride=2)]
        for out, stride in V1_LAYERS:
            features.append(DepthwiseSeparable(channels, slim_depth(out, width), stride))
            channels = slim_depth(out, width)
        self.features = nn.Sequential(*features)
        # TF-Slim's logits are a 1x1 conv with bias on the pooled map: the same as a Linear
        # (dropout keep_prob 0.999 as in TF-Slim).
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(channels, num_classes))
        init_weights(self)


# The paper's Table 2 (expansion t, channels c, repeats n, stride s), after the 32-channel stem.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
V2_STAGES += ((6, 160, 3, 2), (6, 320, 1, 1))


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
        for index, (t, c, n, s) in enumerate(V2_STAGES):
            # timm's depth rule: ceil(n * depth), but the first and last stages keep their block.
            repeats = n if index in (0, len(V2_STAGES) - 1) else math.ceil(n * depth)
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
    """TF-Slim's width rule; at 1.0 torchvision's model."""

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
