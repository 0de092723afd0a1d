"""Checkpoints: a torchvision-layout state dict loads; wrong, corrupt or unsafe files are refused."""

from __future__ import annotations

import collections

import pytest
import torch

from mbprof.core.errors import WeightsError
from mbprof.models import create_model, load_weights
from tests.conftest import assert_one_line_error


@pytest.fixture
def checkpoint(tmp_path):
    """A MobileNetV2 0.5 / 10-class state dict with recognisable values."""
    model = create_model("mobilenet_v2", width=0.5, num_classes=10)
    with torch.no_grad():
        for index, param in enumerate(model.parameters()):
            param.fill_(index * 0.001)
    path = tmp_path / "mnv2.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_round_trip(checkpoint):
    path, original = checkpoint
    fresh = create_model("mobilenet_v2", width=0.5, num_classes=10, weights=path)
    for (name, a), b in zip(
        original.state_dict().items(), fresh.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not fresh.training


@pytest.mark.parametrize("wrap", ["state_dict", "model"])
def test_wrapped_and_data_parallel_checkpoints(tmp_path, checkpoint, wrap):
    _, original = checkpoint
    state = collections.OrderedDict((f"module.{k}", v) for k, v in original.state_dict().items())
    path = tmp_path / "wrapped.pth"
    torch.save({wrap: state, "epoch": 3}, path)
    fresh = load_weights(create_model("mobilenet_v2", width=0.5, num_classes=10), path)
    assert torch.equal(fresh.classifier[1].weight, original.classifier[1].weight)


def test_wrong_shapes_name_the_tensor(checkpoint):
    path, _ = checkpoint
    with pytest.raises(WeightsError, match=r"features\.0\.0\.weight has shape \[16, 3, 3, 3\]"):
        create_model("mobilenet_v2", width=1.0, num_classes=10, weights=path)


def test_missing_keys(tmp_path):
    state = create_model("mobilenet_v2", width=0.5).state_dict()
    del state["classifier.1.bias"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="1 missing keys .first: classifier.1.bias"):
        create_model("mobilenet_v2", width=0.5, weights=path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        create_model("mobilenet_v2", weights=path)


class Payload:
    """An arbitrary object: weights_only=True must refuse to unpickle it."""


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(WeightsError, match="weights_only=True"):
        create_model("mobilenet_v2", weights=path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        create_model("mobilenet_v2", weights=path)


def test_cli_weights_errors(run, checkpoint, tmp_path):
    path, _ = checkpoint
    assert_one_line_error(
        run("profile", "mobilenet_v2", "--weights", str(path), "--res", "64"), "does not fit"
    )
    assert_one_line_error(
        run("profile", "mobilenet_v2", "--weights", str(tmp_path / "nope.pth")), "does not exist"
    )
    ok = run(
        "profile",
        "mobilenet_v2",
        "--width",
        "0.5",
        "--classes",
        "10",
        "--res",
        "64",
        "--weights",
        str(path),
        "--format",
        "json",
    )
    assert ok.exit_code == 0, ok.stderr
