"""ShuffleNet v1 against its published figures, its Table 1 and a second counter."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from mbprof.analysis.counting import count
from mbprof.core.errors import MbprofError
from mbprof.models import create_model, get_model_info
from mbprof.models.builders import channel_shuffle
from tests.support.flop_reference import single_thread, torch_madds  # noqa: F401  (fixture)


@functools.cache
def counts_224(groups: int, scale: float):
    """fvcore's counts at 224, checked against torch's own counter on the way."""
    model = create_model(f"shufflenet_v1_g{groups}", width=scale)
    counts = count(model, (1, 3, 224, 224))
    assert counts.madds == torch_madds(model, (1, 3, 224, 224))
    return counts


# (groups, scale, MAdds in M, params in M) as published, rounded as published: the
# MobileNetV2 paper's Table 4 (g=3 1.5x and 2x) and the reference code's README
# (megvii-model/ShuffleNet-Series, ShuffleNetV1: g=3 and g=8 at 0.5x .. 2x).
PUBLISHED = [
    (3, 0.5, 38, 0.7),
    (3, 1.0, 138, 1.9),
    (3, 1.5, 292, 3.4),
    (3, 2.0, 524, 5.4),
    (8, 1.0, 138, 2.4),
    (8, 2.0, 522, 6.5),
]


@pytest.mark.parametrize(("groups", "scale", "madds_m", "params_m"), PUBLISHED)
def test_published_figures(groups, scale, madds_m, params_m):
    counts = counts_224(groups, scale)
    assert round(counts.params / 1e6, 1) == params_m
    if (groups, scale) == (3, 1.0):
        # 137.46M: the paper's Table 1 says 137M (without the classifier, see below), the
        # reference code's README 138M, the MobileNetV2 paper "137-140M".
        assert 137e6 <= counts.madds <= 140e6
    else:
        assert round(counts.madds / 1e6) == madds_m


@pytest.mark.parametrize(("groups", "paper"), [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_table1_complexity_excludes_the_classifier(groups, paper):
    """The ShuffleNet paper's Table 1 (1x, 224) lists 143/140/137/133/137 MFLOPs for
    g = 1/2/3/4/8: our MAdds minus the 1000-way classifier, to the digit."""
    counts = counts_224(groups, 1.0)
    fc = next(row for row in counts.layers if row.path == "fc")
    assert fc.madds == fc.in_channels * 1000  # hand computation: one MAdd per weight
    assert round((counts.madds - fc.madds) / 1e6) == paper


@pytest.mark.parametrize(
    ("groups", "channels"),
    [
        (1, (144, 288, 576)),
        (2, (200, 400, 800)),
        (3, (240, 480, 960)),
        (4, (272, 544, 1088)),
        (8, (384, 768, 1536)),
    ],
)
def test_stage_channels_and_shapes_at_1x(groups, channels):
    model = create_model(f"shufflenet_v1_g{groups}")
    outputs = {}
    for name in ("conv1", "stage2", "stage3", "stage4"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out.shape)
        )
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 224, 224))
    assert logits.shape == (2, 1000)
    assert outputs["conv1"] == (2, 24, 112, 112)
    assert outputs["stage2"] == (2, channels[0], 28, 28)
    assert outputs["stage3"] == (2, channels[1], 14, 14)
    assert outputs["stage4"] == (2, channels[2], 7, 7)
    assert [len(getattr(model, s)) for s in ("stage2", "stage3", "stage4")] == [4, 8, 4]


def test_unit_structure_g3():
    model = create_model("shufflenet_v1_g3", width=2.0)
    first, second = model.stage2[0], model.stage2[1]
    # The first pointwise conv sees conv1's 48 channels and is not grouped; later ones are.
    assert (first.compress[0].in_channels, first.compress[0].groups) == (48, 1)
    assert second.compress[0].groups == 3
    # Bottleneck = out / 4; depthwise 3x3 without ReLU; grouped expansion to out - in.
    assert first.compress[0].out_channels == 480 // 4
    assert first.depthwise[0].groups == 120 and len(first.depthwise) == 2
    assert (first.expand[0].out_channels, first.expand[0].groups) == (480 - 48, 3)
    assert isinstance(first.shortcut, nn.AvgPool2d) and first.shortcut.stride == 2
    assert second.expand[0].out_channels == 480


def test_conv1_width_per_scale():
    def conv1(groups, scale):
        return create_model(f"shufflenet_v1_g{groups}", width=scale).conv1[0].out_channels

    # Reference code: 12 at 0.5x, 24 at 1x and 1.5x, 48 at 2x; its g=8 0.5x uses 16.
    assert [conv1(3, s) for s in (0.25, 0.5, 1.0, 1.5, 2.0)] == [12, 12, 24, 24, 48]
    assert conv1(8, 0.5) == 16


def test_channel_shuffle_by_hand():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)  # g=2 groups of 3: (0 1 2)(3 4 5)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_forward_at_small_resolutions():
    model = create_model("shufflenet_v1_g8", width=0.5, num_classes=10)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
        assert model(torch.randn(1, 3, 65, 47)).shape == (1, 10)


def test_group_count_that_does_not_divide_is_refused_before_building():
    info = get_model_info("shufflenet_v1_g4")
    with pytest.raises(MbprofError) as err:
        info.check(0.25, 1.0, 1000)
    message = str(err.value)
    assert "0.25" in message and "4 groups" in message and "17" in message
    with pytest.raises(MbprofError, match="2 groups do not divide the 25 bottleneck"):
        create_model("shufflenet_v1_g2", width=0.5)


def test_scale_range():
    with pytest.raises(MbprofError, match=r"0.25 <= w <= 2"):
        create_model("shufflenet_v1_g3", width=2.5)
    with pytest.raises(MbprofError, match=r"0.25 <= w <= 2"):
        create_model("shufflenet_v1_g3", width=0.2)
    assert create_model("shufflenet_v1_g3", width=0.25).stage4[0].out_channels == 240
