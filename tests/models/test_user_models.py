"""The user's own model by import path, through the API and every counting command."""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest
import torch
from typer.testing import CliRunner

import mbprof
from mbprof.cli import app
from mbprof.core.errors import MbprofError, UnknownModelError
from mbprof.models import create_model, get_model_info
from tests.support.flop_reference import single_thread  # noqa: F401  (fixture)

MODELS_PY = '''
"""Test networks."""
import torch
from torch import nn


class TinyNet(nn.Module):
    """A conv, a batch norm and a classifier."""

    def __init__(self, channels: int = 16, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(width: float = 1.0, num_classes: int = 1000, channels: int = 16):
    """TinyNet with a width multiplier."""
    return TinyNet(int(channels * width), num_classes)


def needs(size):
    return TinyNet(size)


def not_a_model():
    return 42


def fails(channels: int = 4):
    raise RuntimeError("cannot build this one\\nsecond line")


class NotAModule:
    pass


VALUE = 3
'''


def tiny_madds(channels: int, side: int, classes: int = 1000) -> int:
    """Hand computation: 3x3 stride-2 conv from 3 channels, then the classifier."""
    out = (side + 1) // 2
    return out * out * channels * 3 * 3 * 3 + channels * classes


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A fresh package on sys.path (a new name each time: imports are cached)."""
    name = f"userpkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "models.py").write_text(textwrap.dedent(MODELS_PY))
    (tmp_path / name / "broken.py").write_text("import not_installed_dependency_xyz\n")
    (tmp_path / name / "raises.py").write_text("raise ValueError('bad config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_api_class_and_factory(pkg):
    profile = mbprof.profile(f"{pkg}.models:TinyNet", resolution=64)
    assert profile.counts.madds == tiny_madds(16, 64)
    assert profile.counts.params == 16 * 27 + 2 * 16 + 16 * 1000 + 1000
    model = create_model(f"{pkg}.models:build", width=0.5, num_classes=10, channels=8)
    assert model.conv.out_channels == 4 and model.fc.out_features == 10
    info = get_model_info(f"{pkg}.models:build")
    assert info.family == "user model" and info.summary == "TinyNet with a width multiplier."


def test_profile_command_with_args(pkg):
    result = run(
        "profile", f"{pkg}.models:build", "--res", "64", "--width", "0.5", "--arg",
        "channels=8", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)["facts"]
    assert facts["madds"] == tiny_madds(4, 64)
    assert facts["args"] == {"channels": 8} and facts["width"] == 0.5


def test_compare_mixes_user_and_registered_models(pkg):
    result = run(
        "compare", "--models", f"{pkg}.models:TinyNet,mobilenet_v3_small", "--res", "32,48",
        "--format", "csv", "--no-latency",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5 and lines[1].startswith(f"{pkg}.models:TinyNet,")
    assert f",{tiny_madds(16, 48)}," in lines[2]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{pkg}.nothere:build", "no module named '{pkg}.nothere'"),
        ("nopkg_{pkg}.models:build", "no module named 'nopkg_{pkg}'"),
        ("{pkg}.broken:build", "it imports 'not_installed_dependency_xyz', which is not installed"),
        ("{pkg}.raises:build", "raised ValueError: bad config"),
        ("{pkg}.models:biuld", "has no attribute 'biuld'; did you mean build?"),
        ("{pkg}.models:VALUE", "names an object of type int, not a class or function"),
        ("{pkg}.models:NotAModule", "is a class but not a torch.nn.Module subclass"),
        ("{pkg}.models:not_a_model", "returned an object of type int, not a torch.nn.Module"),
        ("{pkg}.models:fails", "raised RuntimeError while being built"),
        ("{pkg}.models:needs", "cannot be called with"),
        ("{pkg}/models.py:build", "not a file name"),
        ("{pkg}.models:", "is not an import path"),
    ],
)
def test_bad_import_paths_one_line_exit_2(pkg, target, message):
    result = run("profile", target.format(pkg=pkg), "--res", "32")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: error: ")
    assert message.format(pkg=pkg) in lines[0]


def test_knobs_the_callable_does_not_take_must_stay_default(pkg):
    with pytest.raises(MbprofError, match="takes no 'width' parameter, so --width must be 1"):
        mbprof.profile(f"{pkg}.models:TinyNet", width=0.5, resolution=32)
    with pytest.raises(MbprofError, match="depth must be 1.0"):
        mbprof.profile(f"{pkg}.models:build", depth=2.0, resolution=32)
    with pytest.raises(MbprofError, match="does not take argument 'size'; it takes: channels"):
        mbprof.profile(f"{pkg}.models:build", resolution=32, kwargs={"size": 3})
    result = run("compare", "--models", f"{pkg}.models:TinyNet", "--widths", "1.0,0.5")
    assert result.exit_code == 2 and "--width must be 1" in result.stderr


def test_unknown_model_hints_at_import_paths():
    with pytest.raises(UnknownModelError, match="import path such as mypkg.models:build"):
        get_model_info("no_such_model")


def test_user_model_traces(pkg):
    model = create_model(f"{pkg}.models:build")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), model(x))
