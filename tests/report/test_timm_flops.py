"""timm's model-index "FLOPs" (seed 004): an independent thop-style count of the index's
input reproduces its figure, and the report's section says what it compared."""

from __future__ import annotations

import torch
from torch import nn

from mbprof.core.records import CountReport, LayerRow
from mbprof.models import create_model
from mbprof.report.tables import SEED_INPUT, timm_flops_markdown, timm_rows


def thop_style(model: nn.Module, resolution: tuple[int, int]) -> int:
    """thop's rules of early 2021, by hooks (no mbprof counting): conv MACs, batch norm 2
    per element, the global average pool (k + 1) per output, the classifier left out."""
    total, last = 0, None

    def hook(module, inputs, output):
        nonlocal total, last
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.BatchNorm2d):
            total += 2 * inputs[0].numel()
            last = output.shape

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *resolution))
    for handle in handles:
        handle.remove()
    _, channels, h, w = last  # the head's output, which the pool averages
    return total + (h * w + 1) * channels


def test_the_index_figure_is_a_thop_count_of_224x285():
    row = next(r for r in timm_rows() if r.name == "mobilenetv2_100")
    assert row.flops == 401_920_448  # as the index prints it
    assert SEED_INPUT == (224, 285) and row.seed.num_classes == 1
    assert thop_style(create_model("mobilenet_v2"), SEED_INPUT) == row.flops
    assert thop_style(create_model("mobilenet_v2"), (224, 224)) != row.flops  # not square


def test_the_rows_name_timm_s_four_builds():
    rows = {r.name: r for r in timm_rows()}
    assert list(rows) == [
        "mobilenetv2_100",
        "mobilenetv2_110d",
        "mobilenetv2_120d",
        "mobilenetv2_140",
    ]
    assert rows["mobilenetv2_110d"].seed.kwargs == (("fix_stem_head", True),)
    assert (rows["mobilenetv2_120d"].square.width, rows["mobilenetv2_120d"].square.depth) == (
        1.2,
        1.4,
    )
    assert rows["mobilenetv2_140"].square.resolution == (224, 224)


def _counts(flops_off: int = 0) -> tuple:
    row = timm_rows()[0]
    # mbprof's figures for mobilenetv2_100 (conv MACs + one-output classifier, BN, pool).
    by_op = {"batch_norm": 17_132_864, "adaptive_avg_pool2d": 80_640}
    seed = CountReport(
        madds=384_705_664 + 1280 + flops_off,
        params=0,
        other_flops=17_132_864 + 80_640,
        layers=(LayerRow("classifier", "Linear", 1280, 0, 0),),
        other_flops_by_op=by_op,
    )
    square = CountReport(
        madds=300_774_272,
        params=3_504_872,
        other_flops=0,
        layers=(LayerRow("classifier", "Linear", 1_280_000, 0, 0),),
    )
    return row, seed, square


def test_the_section_reports_what_it_compared():
    text = timm_flops_markdown([_counts()])
    assert "to the digit, line by line" in text
    row = next(line for line in text.splitlines() if line.startswith("| `mobilenetv2_100`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:8] == ["401,920,448", "384,706,944", "17,132,864", "80,640", "401,920,448", "0"]
    assert cells[9] == "1.336"  # 401,920,448 / 300,774,272
    assert "384,705,664 multiply-accumulates at 224x285 against 299,494,272" in text
    off = timm_flops_markdown([_counts(flops_off=5)])
    assert "**not exactly**" in off and "| -5 |" in off
    assert timm_flops_markdown([]) == ""
