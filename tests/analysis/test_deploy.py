"""The deployed form (--reparam): small models written here, with the hooks the
re-parameterizable families use (a two-branch block merged by ``reparameterize()``, a
conv + batch norm pair replaced by ``fuse()``), and an attention block that turns autocast
off inside its forward. Every figure is computed by hand in the comments."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import mbprof
from mbprof.analysis.deploy import reparameterize
from mbprof.core.errors import ModelRunError

C = 4
HERE = "tests.analysis.test_deploy:"


class TwoBranch(nn.Module):
    """RepVGG-style: a 3x3 and a 1x1 convolution side by side, merged into one 3x3."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.c3, self.c1 = nn.Conv2d(C, C, 3, padding=1), nn.Conv2d(C, C, 1)
        self.merged: nn.Conv2d | None = None
        self.broken = broken

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merged(x) if self.merged is not None else self.c3(x) + self.c1(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        merged = nn.Conv2d(C, C, 3, padding=1)
        merged.weight.copy_(self.c3.weight)
        merged.bias.copy_(self.c3.bias)
        if not self.broken:  # the broken hook forgets the 1x1 branch
            merged.weight[:, :, 1, 1] += self.c1.weight[:, :, 0, 0]
            merged.bias += self.c1.bias
        self.merged = merged
        del self.c3, self.c1


class ConvBN(nn.Sequential):
    """LeViT-style: ``fuse()`` returns the convolution with the batch norm folded in."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv, bn = self
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        fused = nn.Conv2d(C, C, 3, padding=1)
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        return fused


class Net(nn.Module):
    def __init__(self, broken: bool = False, hooks: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, C, 3, padding=1)
        self.block = TwoBranch(broken) if hooks else nn.Conv2d(C, C, 3, padding=1)
        self.convbn = ConvBN()
        self.fc = nn.Linear(C, 10)
        torch.manual_seed(0)
        bn = self.convbn[1]  # trained-looking statistics, so that folding is not trivial
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convbn(self.block(self.stem(x))).mean((2, 3)))


class Attention(nn.Module):
    """EfficientViT-style: its attention turns autocast off, which the meta device refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, C, 3, stride=2, padding=1)
        self.qkv = nn.Conv2d(C, 3 * C, 1)
        self.fc = nn.Linear(C, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).chunk(3, dim=1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            y = v @ (q.transpose(1, 2) @ k).softmax(-1)
        return self.fc(y.reshape(b, c, h, w).mean((2, 3)))


def build(num_classes: int = 10, broken: bool = False, hooks: bool = True) -> nn.Module:
    return Net(broken, hooks)


def build_attention(num_classes: int = 10) -> nn.Module:
    return Attention()


# By hand at 32x32 (3 -> 4 channels, 3x3 convs with padding, 1,024 positions):
# stem 1,024 * 4 * 27 = 110,592 MAdds, 108 + 4 params; two branches 1,024 * 16 * (9 + 1) =
# 163,840 MAdds, 148 + 20 params (merged: 147,456 and 148); conv + BN 147,456 MAdds, 144 + 8
# params (fused: 144 + 4 bias); fc 40 MAdds, 50 params.
BUILT = (110_592 + 163_840 + 147_456 + 40, 112 + 168 + 152 + 50)
DEPLOYED = (110_592 + 147_456 + 147_456 + 40, 112 + 148 + 148 + 50)


def test_reparam_counts_the_deployed_form_and_says_what_changed():
    built = mbprof.profile(HERE + "build", resolution=32, num_classes=10, with_memory=False)
    deployed = mbprof.profile(
        HERE + "build", resolution=32, num_classes=10, with_memory=False, reparam=True
    )
    assert (built.counts.madds, built.counts.params) == BUILT
    assert (deployed.counts.madds, deployed.counts.params) == DEPLOYED
    note = "reparam: merged 2 re-parameterizable blocks (reparameterize() x1, fuse() x1): "
    assert note + "482 -> 458 params" in deployed.notes
    assert deployed.spec.label.endswith(" reparam")


def test_the_deployed_model_computes_what_was_built():
    model = Net().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    deployed, _ = reparameterize(model, (1, 3, 32, 32))
    assert deployed is not model and isinstance(model.block.c3, nn.Conv2d)  # a copy
    torch.testing.assert_close(deployed(x), model(x), rtol=1e-4, atol=1e-5)


def test_a_hook_that_changes_the_output_is_refused_naming_the_module():
    with pytest.raises(ModelRunError, match=r"reparameterize\(\) of module 'block' \(TwoBranch\)"):
        reparameterize(Net(broken=True), (1, 3, 32, 32))


def test_nothing_to_merge_is_a_note(run):
    result = run(
        "profile",
        HERE + "build",
        "--arg",
        "hooks=false",
        "--res",
        "32",
        "--classes",
        "10",
        "--reparam",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert any(n.startswith("reparam: merged 1 ") for n in document["notes"])  # fuse() only
    plain = Net(hooks=False)
    assert reparameterize(nn.Sequential(nn.Conv2d(3, 4, 1)), (1, 3, 8, 8))[1].startswith(
        "reparam: nothing to merge"
    )
    assert plain.block.weight.shape == (C, C, 3, 3)


def test_reparam_is_part_of_a_rows_identity(run):
    result = run(
        "compare",
        "--models",
        HERE + "build",
        "--res",
        "32",
        "--classes",
        "10",
        "--reparam",
        "--no-latency",
        "--workers",
        "1",
        "--no-cache",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["tables"]["configurations"][0]
    assert row["reparam"] is True and row["params"] == DEPLOYED[1]


def test_a_model_that_turns_autocast_off_is_profiled_whole(run):
    # by hand at 32x32: stem 256 * 4 * 27 = 27,648 MAdds; qkv 256 * 4 * 12 = 12,288;
    # q^T k 256 * 256 * 4 = 262,144; v @ attention 4 * 256 * 256 = 262,144; fc 40
    result = mbprof.profile(HERE + "build_attention", resolution=32, num_classes=10)
    assert result.counts.madds == 27_648 + 12_288 + 2 * 262_144 + 40
    assert result.missing == () and result.memory is not None
    # the peak by hand: the softmax reads and writes the 256 x 256 attention matrix (fp16),
    # while qkv's 12 x 256 output is held for v
    assert result.memory.peak.live_bytes == 2 * 256 * 256 * 2 + 12 * 256 * 2
