"""Every baseline through the CLI (profile, compare) and through torch.fx / torch.jit.trace,
which the memory and latency commands rely on."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.models import create_model, list_models
from tests.support.flop_reference import single_thread, torch_madds  # noqa: F401  (fixture)

BASELINES = [
    *(f"shufflenet_v1_g{g}" for g in (1, 2, 3, 4, 8)),
    "nasnet_a_mobile",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_all_registered():
    assert set(BASELINES) <= set(list_models())


@pytest.mark.slow  # every baseline at 224, twice
def test_compare_every_baseline_against_torch_counter():
    """(NASNet, the slowest to count, goes through compare at width 0.5 in test_nasnet.)"""
    names = [name for name in BASELINES if name != "nasnet_a_mobile"]
    result = run(
        "compare", "--models", ",".join(names), "--res", "32", "--format", "csv", "--no-latency"
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["model"] for row in rows] == names
    for row in rows:
        expected = torch_madds(create_model(row["model"]), (1, 3, 32, 32))
        assert int(row["madds"]) == expected, row["model"]
        # The activation memory columns come along (fp16, 2 bytes per element).
        assert int(row["peak_act_bytes"]) >= int(row["max_tensor_bytes"]) > 0, row["model"]
    # Hand computation: ShuffleNet g=3's largest tensor at 32 is conv1's 24 x 16 x 16.
    assert int(rows[2]["max_tensor_bytes"]) == 24 * 16 * 16 * 2


def test_profile_command_markdown_and_json():
    result = run("profile", "shufflenet_v1_g3", "--width", "0.5", "--res", "64", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    model = create_model("shufflenet_v1_g3", width=0.5)
    assert doc["facts"]["madds"] == torch_madds(model, (1, 3, 64, 64))
    assert doc["facts"]["params"] == sum(p.numel() for p in model.parameters())
    paths = [row["path"] for row in doc["tables"]["layers"]]
    assert "stage2.0.compress.0" in paths and "fc" in paths
    result = run("profile", "mobilenet_v3_small", "--res", "48", "-f", "markdown")
    assert result.exit_code == 0 and "features.1.block.1.fc1" in result.stdout


def test_bad_width_is_refused_before_any_work():
    result = run(
        "compare", "--models", "mobilenet_v3_small,shufflenet_v1_g4", "--widths", "1.0,0.25"
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "mbprof: error: shufflenet_v1_g4 cannot be built at scale (width) 0.25: 4 groups do "
        "not divide the 17 bottleneck channels of stage 2; pick another scale or group count"
    )


@pytest.mark.parametrize(
    "name",
    [
        "shufflenet_v1_g3",
        pytest.param("nasnet_a_mobile", marks=pytest.mark.slow),
        "mobilenet_v3_large",
    ],
)
def test_fx_and_jit_trace(name):
    model = create_model(name, num_classes=10)
    x, other = torch.randn(2, 3, 32, 32), torch.randn(1, 3, 37, 53)
    with torch.no_grad():
        expected = model(x)
        graph = torch.fx.symbolic_trace(model)
        # (torch's own re-trace check takes NASNet's ~2000-node graph 3x longer)
        traced = torch.jit.trace(model, x, check_trace=False)
        torch.testing.assert_close(graph(x), expected)
        torch.testing.assert_close(traced(x), expected)
        torch.testing.assert_close(traced(other), model(other))  # no shapes baked in


@pytest.mark.parametrize("name", ["shufflenet_v1_g1", "shufflenet_v1_g8", "mobilenet_v3_small"])
def test_fx_trace_other_variants(name):
    model = create_model(name, num_classes=10)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), model(x))
