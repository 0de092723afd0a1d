"""Data-free calibration: random-init models give logits of order one, deterministically,
and nothing about their costs changes."""

from __future__ import annotations

import pytest
import torch

import mbprof
from mbprof.models.calibration import calibrate


@pytest.mark.parametrize(
    ("name", "res"), [("mobilenet_v2", 96), ("mobilenet_v1", 64), ("shufflenet_v1_g3", 64)]
)
def test_logits_of_order_one_after_calibration(name, res):
    model = mbprof.create_model(name, width=0.5)
    x = torch.randn(4, 3, res, res, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        before = model(x).std().item()
        calibrate(model, (res, res))
        after = model(x).std().item()
    assert before < 0.1  # the random initialisation's shrinking activations
    assert 0.3 < after < 3, after  # unit logits on the calibration images, about 1 on others
    assert not model.training


def test_calibration_is_deterministic_and_keeps_the_parameter_count():
    a, b = (mbprof.create_model("mobilenet_v2", width=0.35) for _ in range(2))
    b.load_state_dict(a.state_dict())
    shapes = {k: v.shape for k, v in a.state_dict().items()}
    calibrate(a, (64, 64))
    calibrate(b, (64, 64))
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), key
    assert {k: v.shape for k, v in a.state_dict().items()} == shapes  # the same tensors


def test_a_model_on_the_meta_device_is_left_alone():
    with torch.device("meta"):
        model = mbprof.create_model("mobilenet_v2", width=0.35)
    assert calibrate(model, (64, 64)) is model
