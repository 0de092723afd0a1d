"""The layer-cost calculator against a hand computation (seed 000) and against torch's
own FLOP counter on real nn.Conv2d layers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from mbprof.analysis.layer_cost import layer_cost
from mbprof.cli import app
from mbprof.core.errors import MbprofError

runner = CliRunner()


def test_the_seed_example_by_hand():
    # Seed 000: 3*3*3*64*28*28 = 1354752 against 3*3*3*28*28 + 3*64*28*28 = 171696.
    cost = layer_cost((28, 28, 3), 64, 3)
    assert cost.out_hw == (28, 28)
    assert cost.standard == 1_354_752
    assert cost.separable == 171_696
    assert cost.depthwise == 21_168 and cost.pointwise == 150_528
    assert cost.ratio == pytest.approx(7.8904, abs=1e-4)


def _torch_mults(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates by torch's FlopCounterMode (2 FLOPs per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops() // 2


def _torch_pair(h, w, c, f, k, stride, padding):
    """A standard and a separable nn.Conv2d stack with mbprof's padding rule."""
    if padding == "same":  # TensorFlow's SAME: total padding (out-1)*s + k - size, more after
        pads = []
        for size in (w, h):
            out = -(-size // stride)
            total = max((out - 1) * stride + k - size, 0)
            pads += [total // 2, total - total // 2]
        pad_module, conv_pad = nn.ZeroPad2d(tuple(pads)), 0
    else:
        pad_module, conv_pad = nn.Identity(), 0 if padding == "valid" else int(padding)
    standard = nn.Sequential(pad_module, nn.Conv2d(c, f, k, stride, conv_pad, bias=False))
    separable = nn.Sequential(
        pad_module,
        nn.Conv2d(c, c, k, stride, conv_pad, groups=c, bias=False),
        nn.Conv2d(c, f, 1, bias=False),
    )
    return standard, separable


@pytest.mark.parametrize(
    "h, w, c, f, k, stride, padding",
    [
        (28, 28, 3, 64, 3, 1, "same"),
        (28, 28, 3, 64, 3, 2, "same"),
        (27, 31, 8, 16, 5, 2, "same"),
        (28, 28, 3, 64, 3, 1, "valid"),
        (30, 20, 4, 12, 7, 3, "valid"),
        (28, 28, 3, 64, 3, 2, "1"),
        (9, 9, 2, 5, 3, 1, "4"),
    ],
)
def test_against_torch_flop_counter(h, w, c, f, k, stride, padding):
    cost = layer_cost((h, w, c), f, k, stride, padding)
    standard, separable = _torch_pair(h, w, c, f, k, stride, padding)
    x = torch.zeros(1, c, h, w)
    assert standard(x).shape[-2:] == cost.out_hw
    assert _torch_mults(standard, x) == cost.standard
    assert _torch_mults(separable, x) == cost.separable


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(3, 20),
    w=st.integers(3, 20),
    c=st.integers(1, 6),
    f=st.integers(1, 9),
    k=st.sampled_from([1, 3]),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["same", "valid", "0", "1", "2"]),
)
def test_against_torch_for_many_shapes(h, w, c, f, k, stride, padding):
    cost = layer_cost((h, w, c), f, k, stride, padding)
    standard, separable = _torch_pair(h, w, c, f, k, stride, padding)
    x = torch.zeros(1, c, h, w)
    assert standard(x).shape[-2:] == cost.out_hw
    assert (_torch_mults(standard, x), _torch_mults(separable, x)) == (
        cost.standard,
        cost.separable,
    )


def test_cli_prints_the_seed_numbers():
    result = runner.invoke(app, ["cost", "--input", "28x28x3", "--filters", "64", "--kernel", "3"])
    assert result.exit_code == 0, result.output
    assert "1,354,752" in result.stdout and "171,696" in result.stdout
    assert "7.9" in result.stdout
    csv_out = runner.invoke(
        app, ["cost", "--input", "28x28x3", "--filters", "64", "--format", "csv"]
    )
    lines = csv_out.stdout.splitlines()
    assert lines[1].startswith("standard,3x3,3 -> 64,1354752,1728,")
    assert lines[4].startswith("separable (depthwise + pointwise),,3 -> 64,171696,219,")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "28x28", "--filters", "64"], "--input: '28x28' is not HEIGHTxWIDTHxCHANNELS"),
        (["--input", "28x28x0", "--filters", "64"], "each >= 1"),
        (["--input", "28x28x3", "--filters", "0"], "--filters: 0 is too small"),
        (["--input", "28x28x3", "--filters", "8", "--stride", "0"], "--stride"),
        (["--input", "28x28x3", "--filters", "8", "--padding", "full"], "same, valid or"),
        (
            ["--input", "4x4x3", "--filters", "8", "--kernel", "5", "--padding", "valid"],
            "larger than the padded input side 4",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, ["cost", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_api_refuses_non_integers():
    with pytest.raises(MbprofError, match="kernel: 0 is too small"):
        layer_cost((28, 28, 3), 64, 0)
