"""MAdds and params: published totals, a hand formula per layer, and a second counter."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from mbprof.analysis.counting import count
from mbprof.models import create_model
from tests.conftest import counted as profile  # counting only; memory has its own tests


def second_count(name: str, resolution: tuple[int, int], **kwargs) -> int:
    """torch's own FlopCounterMode on the meta device (no fvcore, no real tensors):
    it counts 2 FLOPs per multiply-accumulate of conv and matmul ops."""
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.empty(1, 3, *resolution, device="meta"))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def layer_formula(row) -> int:
    """Hand formula: a conv does out_h * out_w * out_ch * (in_ch / groups) * kh * kw
    multiply-accumulates; a fully connected layer in * out."""
    if row.type == "Linear":
        return row.in_channels * row.out_channels
    if row.type == "Conv2d":
        kh, kw = row.kernel
        oh, ow = row.out_hw
        return oh * ow * row.out_channels * (row.in_channels // row.groups) * kh * kw
    return 0


def test_mobilenet_v2_published_totals():
    result = profile("mobilenet_v2", width=1.0, resolution=224)
    assert result.counts.madds == 300_774_272  # torchvision's count
    assert result.counts.params == 3_504_872


def test_mobilenet_v2_14_totals():
    result = profile("mobilenet_v2", width=1.4, resolution=224)
    assert round(result.counts.madds / 1e6, 1) == 582.2  # 585M in the paper's rounding
    assert result.counts.params == 6_108_776


def test_mobilenet_v1_totals():
    result = profile("mobilenet_v1", width=1.0, resolution=224)
    assert round(result.counts.madds / 1e6, 1) == 568.7  # TF-Slim: 569M
    assert result.counts.params == 4_231_976


@pytest.mark.parametrize(
    ("name", "width", "resolution"),
    [
        ("mobilenet_v2", 1.0, (224, 224)),
        ("mobilenet_v2", 0.35, (96, 96)),
        ("mobilenet_v2", 1.3, (160, 224)),
        ("mobilenet_v1", 0.75, (128, 128)),
    ],
)
def test_fvcore_agrees_with_torch_flop_counter(name, width, resolution):
    result = profile(name, width=width, resolution=resolution)
    assert result.counts.madds == second_count(name, resolution, width=width)


def test_every_layer_matches_the_hand_formula():
    result = profile("mobilenet_v2", width=0.75, resolution=(128, 160))
    counted = [row for row in result.counts.layers if row.type in ("Conv2d", "Linear")]
    assert len(counted) == 52 + 1  # 52 convs and the classifier
    for row in counted:
        assert row.madds == layer_formula(row), row.path
    assert sum(layer_formula(row) for row in counted) == result.counts.madds


def test_rows_sum_to_totals_and_extras_are_kept_apart():
    counts = profile("mobilenet_v2", width=0.5, resolution=96).counts
    assert sum(r.madds for r in counts.layers) == counts.madds
    assert sum(r.params for r in counts.layers) == counts.params
    assert sum(r.other_flops for r in counts.layers) == counts.other_flops
    # Batch norm is fvcore's "other" estimate, never part of MAdds.
    assert set(counts.other_flops_by_op) == {"batch_norm", "adaptive_avg_pool2d"}
    assert all(r.madds == 0 for r in counts.layers if r.type == "BatchNorm2d")
    # What has no estimate is listed with how often it ran: 35 ReLU6, 10 shortcuts.
    assert counts.uncounted_ops["aten::hardtanh_"] == 35
    assert counts.uncounted_ops["aten::add"] == 10


def test_batch_size_does_not_change_per_image_counts():
    model = create_model("mobilenet_v2", width=0.5)
    assert count(model, (3, 3, 64, 64)).madds == count(model, (1, 3, 64, 64)).madds


def test_layer_rows_describe_geometry():
    counts = profile("mobilenet_v2", resolution=224).counts
    stem = next(r for r in counts.layers if r.path == "features.0.0")
    assert (stem.kernel, stem.stride, stem.groups) == ((3, 3), (2, 2), 1)
    assert (stem.in_channels, stem.out_channels, stem.out_hw) == (3, 32, (112, 112))
    assert stem.madds == 112 * 112 * 32 * 3 * 9


FAST = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
widths = st.sampled_from([0.25, 0.35, 0.5, 0.75, 1.0, 1.3])
sides = st.integers(min_value=4, max_value=12).map(lambda k: 8 * k)  # 32..96


@FAST
@given(a=widths, b=widths, side=sides, name=st.sampled_from(["mobilenet_v1", "mobilenet_v2"]))
def test_madds_grow_with_width(a, b, side, name):
    lo, hi = sorted((a, b))
    small = profile(name, width=lo, resolution=side).counts
    large = profile(name, width=hi, resolution=side).counts
    assert small.madds <= large.madds
    assert small.params <= large.params
    if lo < hi:
        assert small.madds < large.madds


@FAST
@given(width=widths, a=sides, b=sides)
def test_madds_grow_with_resolution_and_params_do_not(width, a, b):
    lo, hi = sorted((a, b))
    small = profile("mobilenet_v2", width=width, resolution=lo).counts
    large = profile("mobilenet_v2", width=width, resolution=hi).counts
    assert small.madds <= large.madds
    assert small.params == large.params
    assert sum(r.madds for r in large.layers) == large.madds
