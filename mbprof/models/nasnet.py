"""NASNet-A Mobile, "4 @ 1056" (Zoph et al. 2018), as TF-Slim's ``build_nasnet_mobile`` builds
it for inference (no auxiliary head, no drop path); its width and padding: docs/models.md."""

from __future__ import annotations

import torch
from torch import nn

from mbprof.models.mobilenet import init_weights

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
    """ReLU -> 1x1 conv (stride) -> BN."""

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
    """NASNet-A Mobile: 3 stacks of 4 normal cells, reduction cells between them, F = 44 x
    width (TF-Slim's dense_dropout_keep_prob 0.5)."""

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
