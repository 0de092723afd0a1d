"""NASNet-A Mobile against its published figures, its structure and a second counter."""

from __future__ import annotations

import csv
import io
import math

import pytest
import torch
from typer.testing import CliRunner

from mbprof.analysis.counting import count
from mbprof.cli import app
from mbprof.core.errors import MbprofError
from mbprof.models import create_model
from mbprof.models.builders import FactorizedReduction
from tests.support.flop_reference import single_thread, torch_madds  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def model():
    return create_model("nasnet_a_mobile")


@pytest.mark.slow  # NASNet at 224; small sizes are checked below
def test_published_figures_at_224(model):
    """564M MAdds and 5.3M params (NASNet paper Table 2; MobileNetV2 paper Table 4), and the
    same MAdds from torch's own counter."""
    counts = count(model, (1, 3, 224, 224))
    assert round(counts.madds / 1e6) == 564
    assert round(counts.params / 1e6, 1) == 5.3
    assert counts.madds == torch_madds(model, (1, 3, 224, 224))
    # Hand computation: the 3x3 stride-2 VALID stem on 224 gives 111x111x32.
    stem = next(row for row in counts.layers if row.path == "conv0.0")
    assert stem.out_hw == (111, 111)
    assert stem.madds == 111 * 111 * 32 * 3 * 3 * 3
    classifier = next(row for row in counts.layers if row.path == "last_linear")
    assert classifier.madds == 1056 * 1000


def test_cells_channels_and_sizes_at_224(model):
    shapes = {}
    for name, cell in [
        ("cell_stem_0", model.cell_stem_0),
        ("cell_stem_1", model.cell_stem_1),
        *model.cells.items(),
    ]:
        cell.register_forward_hook(lambda _m, _i, out, n=name: shapes.__setitem__(n, out.shape))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    # F = 44: stem cells at F/4 and F/2 (4 outputs each), then 4 normal cells of 6F per
    # stack, reduction cells of 4 x 2F and 4 x 4F in between; "4 @ 1056".
    assert shapes["cell_stem_0"][1:] == (44, 56, 56)
    assert shapes["cell_stem_1"][1:] == (88, 28, 28)
    assert [shapes[f"cell_{i}"][1:] for i in (0, 3)] == [(264, 28, 28)] * 2
    assert shapes["reduction_cell_0"][1:] == (352, 14, 14)
    assert [shapes[f"cell_{i}"][1:] for i in (4, 7)] == [(528, 14, 14)] * 2
    assert shapes["reduction_cell_1"][1:] == (704, 7, 7)
    assert [shapes[f"cell_{i}"][1:] for i in (8, 11)] == [(1056, 7, 7)] * 2
    assert len(model.cells) == 14


def test_cell_wiring(model):
    cell0 = model.cells["cell_0"]
    # Previous output (stem cell 0, twice the size) goes through a factorized reduction.
    assert isinstance(cell0.prev_fit, FactorizedReduction)
    assert isinstance(model.cells["cell_1"].prev_fit[1], torch.nn.Conv2d)
    # The first stem cell uses the raw 32-channel stem output as its second input.
    assert isinstance(model.cell_stem_0.prev_fit, torch.nn.Identity)
    assert model.cell_stem_0.comb_iter_0_right[1].in_channels == 32
    # Separable ops: ReLU, depthwise, pointwise, BN, twice; stride only on the first.
    sep = model.cells["reduction_cell_0"].comb_iter_0_left
    kinds = [type(m).__name__ for m in sep]
    assert kinds == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * 2
    assert (sep[1].kernel_size, sep[1].stride, sep[1].groups) == ((5, 5), (2, 2), 88)
    assert (sep[5].stride, sep[5].groups) == ((1, 1), 88)


def test_factorized_reduction_shifts_the_second_path():
    reduce = FactorizedReduction(1, 2).eval()
    with torch.no_grad():
        reduce.path1_conv.weight.fill_(1.0)
        reduce.path2_conv.weight.fill_(1.0)
        x = torch.arange(1.0, 26.0).reshape(1, 1, 5, 5)  # odd size: 5 -> 3
        out = reduce(x)
    assert out.shape == (1, 2, 3, 3)
    bn = math.sqrt(1 + reduce.bn.eps)  # batch norm at its initial statistics
    path1 = [1, 3, 5, 11, 13, 15, 21, 23, 25]  # pixels (0, 0), (0, 2), ... stride 2
    path2 = [7, 9, 0, 17, 19, 0, 0, 0, 0]  # from (1, 1), zero-padded right and bottom
    torch.testing.assert_close(out[0, 0].flatten() * bn, torch.tensor(path1, dtype=torch.float))
    torch.testing.assert_close(out[0, 1].flatten() * bn, torch.tensor(path2, dtype=torch.float))


def test_small_resolutions_and_width():
    small = create_model("nasnet_a_mobile", width=0.5, num_classes=10)
    assert small.filters == 22 and small.last_linear.in_features == 24 * 22
    with torch.no_grad():
        assert small(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        assert small(torch.randn(1, 3, 45, 70)).shape == (1, 10)
    # Through the compare command, against torch's counter.
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--models",
            "nasnet_a_mobile",
            "--widths",
            "0.5",
            "--res",
            "32",
            "-f",
            "csv",
            "--no-latency",
            "--no-memory",  # the counts are what is checked
        ],
    )
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    small = create_model("nasnet_a_mobile", width=0.5)
    assert int(row["madds"]) == torch_madds(small, (1, 3, 32, 32))
    assert int(row["params"]) == sum(p.numel() for p in small.parameters())
    with pytest.raises(MbprofError, match=">= 0.1"):
        create_model("nasnet_a_mobile", width=0.05)
