"""Models by the names people use: timm/NAME and torchvision/NAME, built without weights.
Neither library imports beside the torch of the test environment, so these tests put a
small stand-in package of the same name on sys.path (a list of names and a factory)."""

from __future__ import annotations

import json
import sys

import pytest

from mbprof.models import user
from tests.conftest import assert_one_line_error

FAKE_TIMM = """
from torch import nn
__version__ = "0.0-test"
def list_models():
    return ["mobileone_s0", "mobileone_s1", "resnet18"]
def create_model(name, pretrained=True, num_classes=1000, **kwargs):
    assert pretrained is False, "mbprof must build without weights"
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes)
    )
"""


@pytest.fixture
def library(tmp_path, monkeypatch):
    """Write a stand-in package: library("timm", source)."""
    user.hub_model_info.cache_clear()

    def write(name: str, source: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, name, raising=False)

    yield write
    user.hub_model_info.cache_clear()


def test_a_timm_name_is_built_by_timm_without_weights(run, library):
    library("timm", FAKE_TIMM)
    result = run("profile", "timm/mobileone_s0", "--res", "32", "--classes", "10", "-f", "json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)["facts"]
    # by hand: conv 30 * 30 * 8 * 27 = 194,400 MAdds, 224 params; linear 80 and 90
    assert (facts["madds"], facts["params"]) == (194_480, 314)


def test_close_names_are_suggested_and_weights_refused(run, library):
    library("timm", FAKE_TIMM)
    result = run("profile", "timm/mobileone_s", "--res", "32")
    assert_one_line_error(
        result,
        "timm has no model 'mobileone_s'",
        "did you mean timm/mobileone_s1 or timm/mobileone_s0?",
    )
    result = run("profile", "timm/resnet18", "--arg", "pretrained=true", "--res", "32")
    assert_one_line_error(result, "built without weights: argument 'pretrained' is not taken")
    result = run("profile", "timm/resnet18", "--width", "0.5")
    assert_one_line_error(result, "takes no 'width' parameter")


def test_a_missing_or_broken_library_is_one_line(run, library, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    result = run("profile", "timm/mobileone_s0")
    assert_one_line_error(result, "timm is not installed; install it with: pip install timm")
    # torchvision built for another torch fails at import with a RuntimeError
    library("torchvision", 'raise RuntimeError("operator torchvision::nms does not exist")\n')
    result = run("memory", "torchvision/resnet50")
    assert_one_line_error(
        result,
        "torchvision is installed but does not import beside torch",
        "RuntimeError: operator torchvision::nms does not exist",
        "pip install -U torch torchvision",
    )


def test_a_budget_file_may_name_a_library_model_without_allow_import(run, library, tmp_path):
    library("timm", FAKE_TIMM)
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[[budget]]\nmodel = "timm/mobileone_s0"\nresolution = 32\nclasses = 10\nmax_params = 314\n'
    )
    result = run("check", str(budgets))
    assert result.exit_code == 0, result.output
