"""Activation memory analysis, against hand computations (the arithmetic is written out here,
never copied from the code's output) and against the MobileNetV2 paper's Table 3."""

from __future__ import annotations

import pytest
import torch

from mbprof.analysis.memory import analyze, analyze_memory
from mbprof.core.errors import MbprofError
from mbprof.models import create_model
from tests.support.memory_models import (
    ConcatCell,
    DataDependent,
    InPlaceResidual,
    ShortcutOfInner,
    ShuffleUnit,
    SqueezeExcite,
    Stem,
)

FP16 = 2  # bytes per element


def by_size(rows):
    return {row.resolution: (row.channels, row.tensor_bytes) for row in rows}


@pytest.fixture(scope="module")
def v1_224():
    return analyze_memory(create_model("mobilenet_v1"), (1, 3, 224, 224))


@pytest.fixture(scope="module")
def v2_224():
    return analyze_memory(create_model("mobilenet_v2"), (1, 3, 224, 224))


# --------------------------------------------------------------- acceptance: the figures


def test_mobilenet_v1_largest_tensor_per_resolution(v1_224):
    assert by_size(v1_224.resolutions) == {
        (112, 112): (64, 64 * 112 * 112 * FP16),  # 1,605,632
        (56, 56): (128, 128 * 56 * 56 * FP16),
        (28, 28): (256, 256 * 28 * 28 * FP16),
        (14, 14): (512, 512 * 14 * 14 * FP16),
        (7, 7): (1024, 1024 * 7 * 7 * FP16),
        (1, 1): (1024, 1024 * FP16),  # the pooled vector
    }
    assert 64 * 112 * 112 * FP16 == 1_605_632


def test_mobilenet_v1_peak(v1_224):
    # features.1's 1x1 conv reads the 32-channel 112x112 map and writes 64 channels there;
    # nothing else is alive (the image is not counted).
    assert v1_224.peak.live_bytes == (32 + 64) * 112 * 112 * FP16  # 2,408,448
    assert (v1_224.peak.module, v1_224.peak.op) == ("features.1.pw.0", "convolution")
    assert v1_224.peak.input_bytes == 32 * 112 * 112 * FP16
    assert v1_224.peak.output_bytes == 64 * 112 * 112 * FP16
    assert v1_224.peak.held_bytes == 0
    # Eager PyTorch: batch norm writes a second 64 x 112 x 112 tensor beside the conv's.
    assert v1_224.eager_peak_bytes == 2 * 64 * 112 * 112 * FP16
    # No block of MobileNetV1 narrows its channels: the efficient mode changes nothing.
    assert v1_224.blocks == ()
    assert v1_224.peak_efficient.live_bytes == v1_224.peak.live_bytes


def test_mobilenet_v2_efficient_largest_tensors(v2_224):
    assert by_size(v2_224.resolutions_efficient) == {
        (112, 112): (16, 16 * 112 * 112 * FP16),  # 401,408: the stem's 32 channels never whole
        (56, 56): (24, 24 * 56 * 56 * FP16),
        (28, 28): (32, 32 * 28 * 28 * FP16),
        (14, 14): (96, 96 * 14 * 14 * FP16),
        (7, 7): (320, 320 * 7 * 7 * FP16),  # the 1280-channel head conv is pooled chunk by chunk
        (1, 1): (1280, 1280 * FP16),
    }
    assert 16 * 112 * 112 * FP16 == 401_408
    assert v2_224.max_tensor_bytes_efficient == 401_408


def test_mobilenet_v2_materialized(v2_224):
    # Largest tensors: the expanded ones (t = 6) and the head.
    assert by_size(v2_224.resolutions) == {
        (112, 112): (96, 96 * 112 * 112 * FP16),  # features.2's expansion of 16 channels
        (56, 56): (144, 144 * 56 * 56 * FP16),
        (28, 28): (192, 192 * 28 * 28 * FP16),
        (14, 14): (576, 576 * 14 * 14 * FP16),
        (7, 7): (1280, 1280 * 7 * 7 * FP16),
        (1, 1): (1280, 1280 * FP16),
    }
    # Peak: features.2's stride-2 depthwise conv reads 96 x 112 x 112 and writes 96 x 56 x 56.
    assert v2_224.peak.live_bytes == 96 * 112 * 112 * FP16 + 96 * 56 * 56 * FP16  # 3,010,560
    assert v2_224.peak.module == "features.2.conv.1.0"
    # Eager: the expansion's batch norm doubles the 96 x 112 x 112 tensor.
    assert v2_224.eager_peak_bytes == 2 * 96 * 112 * 112 * FP16


def test_mobilenet_v2_efficient_peak_one_channel_per_chunk(v2_224, v1_224):
    # features.2 as one op: input 16 x 112 x 112, output 24 x 56 x 56, one channel of its
    # 96 x 112 x 112 expansion.
    expected = 16 * 112 * 112 * FP16 + 24 * 56 * 56 * FP16 + 1 * 112 * 112 * FP16  # 577,024
    assert v2_224.peak_efficient.live_bytes == expected
    assert v2_224.peak_efficient.internal_bytes == 112 * 112 * FP16
    # The acceptance: at least 3.5 times below MobileNetV1 under the same rule.
    ratio = v1_224.peak_efficient.live_bytes / v2_224.peak_efficient.live_bytes
    assert ratio == pytest.approx(2_408_448 / 577_024)
    assert ratio >= 3.5


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        # |input| + |output| + ceil(96 / T) channels of the 112 x 112 expansion (features.2);
        (1, 401_408 + 150_528 + 96 * 112 * 112 * FP16),  # T = 1: the whole expansion
        (4, 401_408 + 150_528 + 24 * 112 * 112 * FP16),  # 1,154,048
        (20, 401_408 + 150_528 + 5 * 112 * 112 * FP16),  # ceil(96 / 20) = 5 channels
    ],
)
def test_mobilenet_v2_efficient_peak_in_t_chunks(chunks, expected):
    report = analyze_memory(create_model("mobilenet_v2"), (1, 3, 224, 224), chunks=chunks)
    assert report.peak_efficient.live_bytes == expected
    assert report.chunks == chunks


def test_t_needed_for_the_papers_ratio():
    # With T chunks the 3.5x of the paper holds only from T = 20 on (5 channels of 96):
    # 2,408,448 / (551,936 + 6 x 25,088) = 3.43 at T = 18, 2,408,448 / 677,376 = 3.56 at T = 20.
    v1 = 2_408_448
    at_18 = analyze_memory(create_model("mobilenet_v2"), (1, 3, 224, 224), chunks=18)
    assert at_18.peak_efficient.live_bytes == 551_936 + 6 * 25_088
    assert v1 / at_18.peak_efficient.live_bytes < 3.5


def test_mobilenet_v2_blocks_found_by_structure(v2_224):
    blocks = v2_224.blocks
    # 17 inverted residuals (the t = 1 one fused with the stem) and the pooled head.
    assert len(blocks) == 18
    stem = blocks[0]
    assert (stem.expand, stem.exit) == ("features.0.0", "features.1.conv.2")
    assert (stem.in_channels, stem.expanded_channels, stem.out_channels) == (3, 32, 16)
    assert [b.residual for b in blocks[1:17]] == [
        n in (3, 5, 6, 8, 9, 10, 12, 13, 15, 16) for n in range(2, 18)
    ]
    assert blocks[-1].kind == "pool" and blocks[-1].expanded_channels == 1280
    assert not any(b.two_pass for b in blocks)


# --------------------------------------------------------------- the paper's Table 3

# Table 3 of the MobileNetV2 paper (seed 002): channels / KB at 16 bits, per resolution.
PAPER_TABLE_3 = {
    "mobilenet_v1": {112: (64, 1600), 56: (128, 800), 28: (256, 400), 14: (512, 200), 7: (1024, 199), 1: (1024, 2)},
    "mobilenet_v2": {112: (16, 400), 56: (32, 200), 28: (64, 100), 14: (160, 62), 7: (320, 32), 1: (1280, 2)},
}  # fmt: skip


def test_table_3_where_it_agrees(v1_224, v2_224):
    ours = {
        "mobilenet_v1": by_size(v1_224.resolutions),
        "mobilenet_v2": by_size(v2_224.resolutions_efficient),
    }
    agree = {"mobilenet_v1": (112, 56, 28, 14, 1), "mobilenet_v2": (112, 7, 1)}
    for model, sides in agree.items():
        for side in sides:
            channels, kb = PAPER_TABLE_3[model][side]
            got_channels, got_bytes = ours[model][(side, side)]
            assert got_channels == channels
            # The paper rounds to about two digits (1,605,632 bytes -> "1600K"; 2,560 -> "2").
            assert abs(got_bytes / 1000 - kb) <= max(0.03 * kb, 0.6), (model, side)


def test_table_3_where_it_is_inconsistent(v1_224, v2_224):
    # V1 at 7x7: the paper's 199K is two 1024 x 7 x 7 tensors (a 1x1 conv's input and output),
    # not one: one is 100,352 bytes.
    assert by_size(v1_224.resolutions)[(7, 7)] == (1024, 1024 * 7 * 7 * FP16)
    assert 2 * 1024 * 7 * 7 * FP16 / 1000 == pytest.approx(199, rel=0.01)
    # V2 from 56x56 to 14x14: the paper lists the next stage's channels (32, 64, 160) at the
    # resolution where that stage's first, stride-2 block starts; its output is smaller.
    eff = by_size(v2_224.resolutions_efficient)
    for side, ours, paper in ((56, 24, 32), (28, 32, 64), (14, 96, 160)):
        assert eff[(side, side)][0] == ours
        assert PAPER_TABLE_3["mobilenet_v2"][side][0] == paper
        assert paper * side * side * FP16 / 1000 == pytest.approx(
            PAPER_TABLE_3["mobilenet_v2"][side][1], rel=0.02
        )


# --------------------------------------------------------------- graph rules on small models


def test_channel_shuffle_views_are_not_counted_twice():
    a = analyze(ShuffleUnit().eval(), (1, 3, 8, 8))
    e = 8 * 8 * FP16  # bytes of one channel
    points = {(p.module, p.op): p for p in a.report.curve}
    # view and transpose share the 12-channel map (before and after the copy); contiguous()
    # copies it once; x is held for the shortcut all along.
    views = [p for p in a.report.curve if p.op in ("view", "transpose")]
    assert len(views) == 3
    assert all(p.live_bytes == 6 * e + 12 * e and p.output_bytes == 0 for p in views)
    assert points[("", "clone")].live_bytes == 6 * e + 12 * e + 12 * e
    assert points[("", "clone")].held_bytes == 6 * e
    assert a.report.peak.live_bytes == 6 * e + 12 * e + 12 * e
    assert a.report.blocks == ()  # the group convs narrow, then widen: no inverted residual


def test_concatenation_branches_stay_alive_until_the_concat():
    report = analyze_memory(ConcatCell().eval(), (1, 3, 8, 8))
    e = 8 * 8 * FP16
    points = {(p.module, p.op): p for p in report.curve}
    # conv b: x (read again by nothing later, but read now) + pooled c + a held + b written.
    assert points[("b", "convolution")].live_bytes == 4 * e + 8 * e + 8 * e + 8 * e
    assert points[("b", "convolution")].held_bytes == 16 * e
    # cat: the three 8-channel branches in, 24 channels out.
    assert points[("", "cat")].live_bytes == 3 * 8 * e + 24 * e
    assert report.peak.live_bytes == 48 * e


def test_squeeze_excitation_block_is_chunked_in_two_passes():
    report = analyze_memory(SqueezeExcite().eval(), (1, 3, 8, 8), chunks=4)
    e = 8 * 8 * FP16
    (block,) = report.blocks
    assert (block.in_channels, block.expanded_channels, block.out_channels) == (8, 32, 8)
    assert block.residual and block.two_pass
    assert block.chunk_channels == 32 // 4
    # Materialized peak at the gating multiply: h (32 ch) and the gate in, 32 ch out, x held.
    gate = 32 * FP16
    assert report.peak.live_bytes == 32 * e + gate + 32 * e + 8 * e
    # Efficient: x + output + 8 channels of the expansion + the SE vectors (pooled 32,
    # fc1 8 with its ReLU in place, fc2 32 with its hard-sigmoid in place).
    vectors = (32 + 8 + 32) * FP16
    assert report.peak_efficient.live_bytes == 8 * e + 8 * e + 8 * e + vectors


def test_inner_tensor_used_elsewhere_is_not_chunked():
    report = analyze_memory(ShortcutOfInner().eval(), (1, 3, 8, 8))
    assert report.blocks == ()
    assert report.peak_efficient.live_bytes == report.peak.live_bytes


def test_in_place_ops_share_their_input():
    report = analyze_memory(InPlaceResidual().eval(), (1, 3, 8, 8))
    e = 8 * 8 * FP16
    points = {(p.module, p.op): p for p in report.curve}
    assert points[("", "add_")].live_bytes == 4 * e + 4 * e
    assert points[("", "relu_")].live_bytes == 4 * e
    assert report.peak.live_bytes == 8 * e


# --------------------------------------------------------------- conventions


def test_dtype_scales_floating_point_elements():
    model = create_model("mobilenet_v2", width=0.5)
    fp16 = analyze_memory(model, (1, 3, 64, 64), dtype="fp16")
    for dtype, factor in (("bf16", 1.0), ("fp32", 2.0), ("int8", 0.5)):
        other = analyze_memory(model, (1, 3, 64, 64), dtype=dtype)
        assert other.peak.live_bytes == fp16.peak.live_bytes * factor
        assert other.peak_efficient.live_bytes == fp16.peak_efficient.live_bytes * factor
        assert other.bytes_per_element == {"bf16": 2, "fp32": 4, "int8": 1}[dtype]


def test_batch_multiplies_every_tensor():
    model = create_model("mobilenet_v1", width=0.25)
    one = analyze_memory(model, (1, 3, 64, 64))
    three = analyze_memory(model, (3, 3, 64, 64))
    assert three.peak.live_bytes == 3 * one.peak.live_bytes
    assert three.max_tensor_bytes == 3 * one.max_tensor_bytes
    assert three.input_bytes == 3 * 3 * 64 * 64 * FP16


def test_input_image_is_not_counted():
    report = analyze_memory(Stem(4).eval(), (1, 3, 8, 8))
    assert report.input_bytes == 3 * 8 * 8 * FP16
    assert report.peak.live_bytes == 4 * 8 * 8 * FP16  # the conv's output only


def test_analysis_leaves_the_model_as_it_was():
    model = create_model("mobilenet_v2", width=0.35)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    analyze_memory(model, (1, 3, 64, 64))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not v.is_meta for v in after.values())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert not model.training


def test_model_built_on_meta_gives_the_same_report():
    with torch.device("meta"):
        meta = create_model("mobilenet_v2", width=0.5)
    real = create_model("mobilenet_v2", width=0.5)
    assert analyze_memory(meta, (1, 3, 64, 64)) == analyze_memory(real, (1, 3, 64, 64))


# --------------------------------------------------------------- bad input


def test_untraceable_model_is_refused():
    with pytest.raises(MbprofError, match="cannot trace DataDependent"):
        analyze_memory(DataDependent(), (1, 3, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "fp64"}, "unknown dtype 'fp64'"),
        ({"chunks": 0}, "0 is too small"),
        ({"chunks": -3}, "too small"),
        ({"chunks": "many"}, "not allowed"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(MbprofError, match=match):
        analyze_memory(Stem(4), (1, 3, 8, 8), **kwargs)


def test_bad_input_shape_is_refused():
    with pytest.raises(MbprofError, match="dimension < 1"):
        analyze_memory(Stem(4), (1, 3, 0, 8))
