"""Builders: channel rules, shapes, state-dict layout, published parameter counts."""

from __future__ import annotations

import math

import pytest
import torch

from mbprof.core.errors import MbprofError, UnknownModelError
from mbprof.models import create_model, get_model_info, list_models
from mbprof.models.builders import make_divisible, slim_depth


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_channels(model: torch.nn.Module) -> list[int]:
    return [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


# Published / reference parameter counts (torchvision, timm, TF-Slim), 1000 classes.
@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("mobilenet_v2", {"width": 1.0}, 3_504_872),  # torchvision mobilenet_v2
        ("mobilenet_v2", {"width": 1.4}, 6_108_776),  # timm mobilenetv2_140 (6.11M)
        ("mobilenet_v1", {"width": 1.0}, 4_231_976),  # TF-Slim MobileNet_v1_1.0_224 (4.2M)
    ],
)
def test_published_param_counts(name, kwargs, expected):
    assert n_params(create_model(name, **kwargs)) == expected


@pytest.mark.parametrize(
    ("width", "depth", "published_millions"),
    [(1.1, 1.2, 4.52), (1.2, 1.4, 5.83)],  # timm mobilenetv2_110d / _120d
)
def test_timm_depth_variants(width, depth, published_millions):
    model = create_model("mobilenet_v2", width=width, depth=depth, fix_stem_head=True)
    assert round(n_params(model) / 1e6, 2) == published_millions


def test_make_divisible_matches_the_reference_rule():
    # Hand-worked values of max(8, int(v + 4) // 8 * 8), +8 when below 90% of v.
    assert make_divisible(32 * 0.35) == 16  # 11.2 rounds to 8, under 90% of 11.2, so 8 + 8
    assert make_divisible(16 * 0.35) == 8
    assert make_divisible(24 * 0.5) == 16  # 12 -> int(16)//8*8 = 16
    assert make_divisible(96 * 0.75) == 72
    assert make_divisible(320 * 1.4) == 448
    assert make_divisible(1280 * 1.4) == 1792


def test_mobilenet_v2_channels_at_035():
    model = create_model("mobilenet_v2", width=0.35)
    stem = model.features[0][0]
    assert stem.out_channels == 16
    # Block outputs per stage at 0.35: 16*.35->8, 24*.35->8, 32*.35->16, 64*.35->24,
    # 96*.35->32, 160*.35->56, 320*.35->112; head stays 1280 below width 1.0.
    outs = [block.out_channels for block in list(model.features)[1:-1]]
    assert outs == [8, 8, 8, 16, 16, 16, 24, 24, 24, 24, 32, 32, 32, 56, 56, 56, 112]
    assert model.features[-1][0].out_channels == 1280


def test_mobilenet_v2_head_grows_above_width_one():
    assert create_model("mobilenet_v2", width=1.4).features[-1][0].out_channels == 1792


def test_t1_block_has_no_expansion_conv():
    block = create_model("mobilenet_v2").features[1]
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(32, 32, 32), (32, 16, 1)]


def test_mobilenet_v2_torchvision_state_dict_layout():
    state = create_model("mobilenet_v2").state_dict()
    # Keys and shapes of torchvision's mobilenet_v2 (checked against its checkpoint).
    expected = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_var": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.weight": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.bias": (24,),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "features.18.1.weight": (1280,),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    # 52 conv+BN units x (1 conv + 5 BN entries) + classifier weight and bias.
    assert len(state) == 52 * 6 + 2
    assert not any(k.startswith("features.19") for k in state)


def test_mobilenet_v1_tf_slim_truncation():
    assert slim_depth(32, 0.35) == 11  # int(11.2), no rounding to 8
    assert slim_depth(16, 0.25) == 8  # floor of 8
    model = create_model("mobilenet_v1", width=0.35)
    channels = conv_channels(model)
    assert channels[0] == 11
    # pointwise outputs: int(c * 0.35) for 64, 128, 128, 256, 256, 512 x6, 1024 x2
    pointwise = channels[2::2]
    assert pointwise == [22, 44, 44, 89, 89] + [179] * 6 + [358, 358]


def test_mobilenet_v1_strides_end_at_7x7():
    model = create_model("mobilenet_v1")
    features = model.features(torch.zeros(1, 3, 224, 224))
    assert tuple(features.shape) == (1, 1024, 7, 7)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2"])
@pytest.mark.parametrize("resolution", [(32, 32), (96, 160)])
def test_forward_shapes(name, resolution):
    model = create_model(name, width=0.5, num_classes=10)
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, *resolution))
    assert tuple(out.shape) == (2, 10)


def test_depth_multiplier_repeats():
    # ceil(n * 1.5) for the middle stages (2, 3, 4, 3, 3 -> 3, 5, 6, 5, 5); first and last keep 1.
    model = create_model("mobilenet_v2", depth=1.5)
    assert len(model.features) == 1 + 1 + 3 + 5 + 6 + 5 + 5 + 1 + 1


def test_registry_lists_and_describes_models():
    names = list_models()
    assert {"mobilenet_v1", "mobilenet_v2"} <= set(names)
    assert list_models("mobilenet_v2") == ["mobilenet_v2"]
    info = get_model_info("mobilenet_v2")
    assert info.has_depth and info.min_resolution == 32


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="did you mean mobilenet_v2"):
        get_model_info("mobilenetv2")
    with pytest.raises(UnknownModelError, match="did you mean mobilenet_v1"):
        get_model_info("mobilenet-v1")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"width": 0.0}, "width 0"),
        ({"width": -1.0}, "width -1"),
        ({"width": math.nan}, "width nan"),
        ({"width": math.inf}, "width inf"),
        ({"num_classes": 0}, "classes 0"),
        ({"depth": 0.0}, "depth 0"),
        ({"foo": 1}, "does not take argument 'foo'"),
    ],
)
def test_bad_knobs_are_refused(kwargs, fragment):
    with pytest.raises(MbprofError, match=fragment):
        create_model("mobilenet_v2", **kwargs)


def test_v1_refuses_depth():
    with pytest.raises(MbprofError, match="no depth multiplier"):
        create_model("mobilenet_v1", depth=1.2)
