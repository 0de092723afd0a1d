"""FLOPs in the 2-per-multiply-add convention: a model counted by hand, torch's own
FlopCounterMode as a second counter, and DeepSpeed's published figure for MobileNetV2."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mbprof.analysis.flops import KINDS, count_flops
from mbprof.models import create_model


class Block(nn.Module):
    """conv 3x3 (bias) -> BN -> ReLU6, a residual add, an SE-style scale, a pool, a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.bn_plain = nn.BatchNorm2d(4, affine=False)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        y = self.bn_plain(y + x)
        y = y * torch.sigmoid(y.mean((2, 3), keepdim=True))
        return self.fc(y.mean((2, 3)))


def test_a_block_counted_by_hand():
    found = count_flops(Block().eval(), (1, 4, 8, 8))
    n = 4 * 8 * 8  # elements of every 4x8x8 tensor
    assert found.by_kind == {
        "multiply_adds": 2 * (n * 4 * 9) + 2 * (4 * 10),  # conv, then the 4 -> 10 classifier
        "bias": n + 10,  # the conv's and the classifier's
        "batch_norm": 2 * n + 1 * n,  # with scale and shift, then without
        "pooling": n + n,  # two means over the 8x8 maps
        "activations": n + 4,  # ReLU6, then the sigmoid on the pooled 4 values
        "additions": n,  # the residual add
        "multiplications": n,  # the SE-style scale
    }
    assert found.total == sum(found.by_kind.values())
    assert list(found.rules) == list(KINDS) and found.uncounted_ops == {}


def test_batch_is_divided_out():
    one, four = (count_flops(Block().eval(), (b, 4, 8, 8)) for b in (1, 4))
    assert one == four


def test_an_op_without_a_rule_is_listed_not_dropped():
    class Cumulative(nn.Module):
        def forward(self, x):
            return x.cumsum(1)

    found = count_flops(Cumulative(), (1, 3, 4, 4))
    assert found.total == 0 and found.uncounted_ops == {"aten::cumsum": 1}


@pytest.mark.parametrize(
    "name, resolution", [("mobilenet_v3_small", 64), ("shufflenet_v1_g3", 64), ("mobilenet_v1", 96)]
)
def test_multiply_adds_agree_with_torch_s_flop_counter(name, resolution):
    # FlopCounterMode counts 2 per multiply-accumulate of convolutions and matrix products.
    with torch.device("meta"):
        model = create_model(name).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, resolution, resolution, device="meta"))
    found = count_flops(model, (1, 3, resolution, resolution))
    assert found.by_kind["multiply_adds"] == counter.get_total_flops()


def test_deepspeed_s_mobilenet_v2_figure_is_multiply_adds_batch_norm_and_pooling():
    # DeepSpeed's flops profiler (and calflops, its fork) print 614.97 M FLOPs for
    # MobileNetV2 1.0@224: 2 x 300,774,272 MAdds + batch norm (2 per element) + the global
    # pool (1 per input element); nn.ReLU6 and `x + y` do not reach the functions they patch.
    with torch.device("meta"):
        model = create_model("mobilenet_v2").eval()
    kinds = count_flops(model, (1, 3, 224, 224)).by_kind
    assert kinds["multiply_adds"] == 2 * 300_774_272
    deepspeed = kinds["multiply_adds"] + kinds["batch_norm"] + kinds["pooling"]
    assert deepspeed == 614_967_488 and round(deepspeed / 1e6, 2) == 614.97
    # Beside it: 35 ReLU6, 10 residual adds and the classifier's 1000 biases.
    assert kinds["bias"] == 1000 and kinds["multiplications"] == 0
    assert kinds["additions"] == 216_384 and kinds["activations"] == 6_105_792


def test_batch_norm_agrees_with_fvcore():
    from tests.conftest import counted

    result = counted("mobilenet_v3_small", resolution=64)
    assert result.flops is not None
    assert result.flops.by_kind["batch_norm"] == result.counts.other_flops_by_op["batch_norm"]
    assert result.flops.by_kind["multiply_adds"] == 2 * result.counts.madds


def test_a_model_the_meta_device_cannot_run_keeps_its_madds(tmp_path, monkeypatch):
    import sys

    from mbprof.api import profile

    module = tmp_path / "datadep_models.py"
    module.write_text(
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, num_classes=1000):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(3, num_classes)\n"
        "    def forward(self, x):\n"
        "        x = x.mean((2, 3))\n"
        "        return self.fc(x) if x.sum().item() >= 0 else x\n"
        "def build(num_classes=1000):\n"
        "    return Net(num_classes)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "datadep_models", raising=False)
    result = profile("datadep_models:build", resolution=32, num_classes=10, with_memory=False)
    assert result.counts.madds == 3 * 10
    assert result.flops is None
