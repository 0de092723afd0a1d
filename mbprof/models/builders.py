"""The built-in models' builders (docs/models.md): MobileNetV1 (Howard et al. 2017), V2
(Sandler et al. 2018) and V3 (Howard et al. 2019) with the blocks they share (V2 and V3 with
torchvision's module names, so that its checkpoints load), ShuffleNet v1 and NASNet-A Mobile."""

from __future__ import annotations

import functools
import math
from collections import OrderedDict, namedtuple

import torch
from torch import nn

from mbprof.models import GROUPS, STAGES, conv1_channels, stage_channels


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
    """MobileNetV1, V2 and V3's forward pass: ``features``, global pooling, ``classifier``."""

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
    """ShuffleNet v1 (Zhang et al. 2017), g = 1, 2, 3, 4, 8 groups, at scales 0.25x to 2x; no
    bias in the classifier, as the code whose figures are published."""

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


BN_EPS = 1e-3  # TF-Slim's nasnet_mobile_arg_scope

# A cell: five combinations, each a new state = an op on a state + an op on a state, then the
# states its output concatenates. States: 0 = this cell's input after its 1x1, 1 = the previous
# cell's output matched to this cell's shape, 2.. = earlier steps. sepK = two stacked separable
# KxK convs, avg3 / max3 = 3x3 pooling, id = identity; TF-Slim's NasNetANormalCell and
# NasNetAReductionCell.
NORMAL = (
    "sep5 0 + sep3 1, sep5 1 + sep3 1, avg3 0 + id 1, avg3 1 + avg3 1, sep3 0 + id 0",
    (1, 2, 3, 4, 5, 6),
)
REDUCTION = (
    "sep5 0 + sep7 1, max3 0 + sep7 1, avg3 0 + sep5 1, id 3 + avg3 2, sep3 2 + max3 0",
    (3, 4, 5, 6),
)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class ReLUConvBN(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        super().__init__(nn.ReLU(), conv, _bn(out_channels))


class SeparableStack(nn.Sequential):
    """TF-Slim's ``separable_KxK_2``: twice ReLU -> depthwise KxK -> pointwise 1x1 -> BN;
    the stride is on the first depthwise conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        layers: list[nn.Module] = []
        for c, step in ((in_channels, stride), (out_channels, 1)):
            depthwise = nn.Conv2d(c, c, kernel, step, kernel // 2, groups=c, bias=False)
            pointwise = nn.Conv2d(c, out_channels, 1, bias=False)
            layers += [nn.ReLU(), depthwise, pointwise, _bn(out_channels)]
        super().__init__(*layers)


class Pool(nn.Sequential):
    """3x3 pooling (SAME padding; the average counts only real pixels, as TF does), then a
    1x1 conv + BN when the channel count has to change."""

    def __init__(self, kind: str, in_channels: int, out_channels: int, stride: int) -> None:
        layers: list[nn.Module] = [
            nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
            if kind == "avg3"
            else nn.MaxPool2d(3, stride=stride, padding=1)
        ]
        if in_channels != out_channels:
            layers += [nn.Conv2d(in_channels, out_channels, 1, bias=False), _bn(out_channels)]
        super().__init__(*layers)


def make_op(kind: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if kind.startswith("sep"):
        return SeparableStack(in_channels, out_channels, int(kind[3:]), stride)
    if kind in ("avg3", "max3"):
        return Pool(kind, in_channels, out_channels, stride)
    if stride > 1 or in_channels != out_channels:  # "id" that must change shape
        return ReLUConvBN(in_channels, out_channels, stride)
    return nn.Identity()


class FactorizedReduction(nn.Module):
    """Halve the spatial size without dropping pixels: two paths of a stride-2 subsample + 1x1
    conv, the second shifted by one pixel (it takes the extra filter of an odd count)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.relu = nn.ReLU()
        self.path1_conv = nn.Conv2d(in_channels, half, 1, bias=False)
        self.path2_conv = nn.Conv2d(in_channels, out_channels - half, 1, bias=False)
        self.bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        path1 = self.path1_conv(x[:, :, ::2, ::2])
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1::2, 1::2]
        return self.bn(torch.cat((path1, self.path2_conv(shifted)), 1))


class Cell(nn.Module):
    """A normal or reduction cell on (cur, prev). ``prev_fit`` says how the previous output
    is matched to this cell: "reduce" (factorized reduction, it is twice the size), "conv"
    (ReLU-1x1-BN, when the channels differ), "none" (first stem cell: used as it is)."""

    def __init__(
        self, spec: tuple, cur_channels: int, prev: int, prev_fit: str, filters: int, stride: int
    ) -> None:
        super().__init__()
        steps, self.outputs = spec
        self.steps = [
            (left, int(a), right, int(b))
            for left, a, _, right, b in (step.split() for step in steps.split(", "))
        ]
        self.conv_1x1 = ReLUConvBN(cur_channels, filters)
        self.prev_fit: nn.Module = nn.Identity()
        if prev_fit == "reduce":
            self.prev_fit, prev = FactorizedReduction(prev, filters), filters
        elif prev_fit == "conv" and prev != filters:
            self.prev_fit, prev = ReLUConvBN(prev, filters), filters
        channels = [filters, prev]
        for index, (left, left_state, right, right_state) in enumerate(self.steps):
            for side, kind, state in (("left", left, left_state), ("right", right, right_state)):
                op = make_op(kind, channels[state], filters, stride if state < 2 else 1)
                self.add_module(f"comb_iter_{index}_{side}", op)
            channels.append(filters)
        self.out_channels = sum(channels[i] for i in self.outputs)

    def forward(self, cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        states = [self.conv_1x1(cur), self.prev_fit(prev)]
        for index, (_, left, _, right) in enumerate(self.steps):
            left = getattr(self, f"comb_iter_{index}_left")(states[left])
            states.append(left + getattr(self, f"comb_iter_{index}_right")(states[right]))
        return torch.cat([states[i] for i in self.outputs], 1)


class NASNetAMobile(nn.Module):
    """NASNet-A Mobile, "4 @ 1056" (Zoph et al. 2018), as TF-Slim's ``build_nasnet_mobile``
    builds it for inference (no auxiliary head, no drop path): 3 stacks of 4 normal cells,
    reduction cells between them, F = 44 x width (dropout: TF-Slim's keep_prob 0.5)."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.filters = filters = max(4, int(round(44 * width)))  # F, at least 4
        self.conv0 = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=0, bias=False), _bn(32))
        # Two reduction cells at F/4 and F/2; the first sees the stem output as both inputs.
        self.cell_stem_0 = Cell(REDUCTION, 32, 32, "none", filters // 4, 2)
        prev = self.cell_stem_0.out_channels
        self.cell_stem_1 = Cell(REDUCTION, prev, 32, "reduce", filters // 2, 2)
        cur, prev_fit = self.cell_stem_1.out_channels, "reduce"  # the cell before had stride 2
        self.cells = nn.ModuleDict()
        for stack in range(3):
            if stack > 0:
                cell = Cell(REDUCTION, cur, prev, "conv", filters * 2**stack, 2)
                self.cells[f"reduction_cell_{stack - 1}"] = cell
                prev, cur, prev_fit = cur, cell.out_channels, "reduce"
            for index in range(4):  # N = 4 normal cells per stack
                cell = Cell(NORMAL, cur, prev, prev_fit, filters * 2**stack, 1)
                self.cells[f"cell_{stack * 4 + index}"] = cell
                prev, cur, prev_fit = cur, cell.out_channels, "conv"
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(cur, num_classes)
        init_weights(self)
        # Random weights only have to keep activations finite (latency in float16): with
        # torchvision's fan-out init and identity batch norms they grow ~2x per cell to
        # ~35000 at 224, near float16's limit; std 1 / sqrt(fan_in) keeps them below ~10.
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and not module.weight.is_meta:
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.conv0(x)
        prev = self.cell_stem_0(stem, stem)
        cur = self.cell_stem_1(prev, stem)
        for cell in self.cells.values():
            prev, cur = cur, cell(cur, prev)
        x = nn.functional.adaptive_avg_pool2d(self.relu(cur), 1)
        return self.last_linear(self.dropout(torch.flatten(x, 1)))
