"""`mbprof memory`, and the memory parts of `profile` and `compare`, through the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.models import register_model, unregister_model
from tests.support.memory_models import DataDependent

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_memory_json_has_the_tables_facts_and_curve():
    result = run("memory", "mobilenet_v2", "--res", "64", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    facts = payload["facts"]
    # At 64x64 the stem output is 32x32: features.2 reads 16 x 32 x 32 and writes 24 x 16 x 16,
    # one channel of its 96 x 32 x 32 expansion (fp16, one channel per chunk).
    assert facts["peak_act_bytes_efficient"] == (16 * 32 * 32 + 24 * 16 * 16 + 32 * 32) * 2
    assert facts["input_bytes"] == 3 * 64 * 64 * 2
    rows = {r["size"]: r for r in payload["tables"]["memory_per_resolution"]}
    assert rows["32x32"]["channels_efficient"] == 16
    assert rows["32x32"]["tensor_bytes_efficient"] == 16 * 32 * 32 * 2
    assert {p["mode"] for p in payload["curve"]} == {"materialized", "efficient"}
    peak = max(p["live_bytes"] for p in payload["curve"] if p["mode"] == "materialized")
    assert peak == facts["peak_act_bytes"]
    assert "tensor_bytes" in payload["columns"]


def test_memory_table_csv_and_markdown(tmp_path):
    out = tmp_path / "v1.csv"
    result = run("memory", "mobilenet_v1", "--res", "64", "--format", "csv", "--output", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    first = frame.iloc[0]
    assert (first["size"], first["channels"], first["tensor_bytes"]) == (
        "32x32",
        64,
        64 * 32 * 32 * 2,
    )
    result = run("memory", "mobilenet_v1", "--res", "64", "--dtype", "fp32", "--format", "markdown")
    assert result.exit_code == 0
    assert "| 32x32 | 64 | 262,144 |" in result.stdout  # 64 x 32 x 32 x 4 bytes
    assert "KB = 1000 bytes" in result.stdout


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_memory_curve_file(tmp_path, suffix):
    curve = tmp_path / f"curve{suffix}"
    result = run("memory", "mobilenet_v2", "--res", "64", "--chunks", "4", "--curve", str(curve))
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        frame = pd.read_csv(curve)
    else:  # the memory document, kind and schema version included
        payload = json.loads(curve.read_text())
        assert (payload["kind"], payload["schema_version"]) == ("memory", 1)
        frame = pd.DataFrame(payload["curve"])
    eff = frame[frame["mode"] == "efficient"]
    # T = 4: 24 of features.2's 96 expanded channels at 32x32 at a time.
    assert eff["live_bytes"].max() == (16 * 32 * 32 + 24 * 16 * 16 + 24 * 32 * 32) * 2
    assert set(frame["chunks"].astype(str)) == {"4"}


def test_memory_measure_option():
    result = run(
        "memory", "mobilenet_v1", "--width", "0.25", "--res", "32", "--dtype", "bf16",
        "--measure", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)["facts"]
    assert facts["measured_last_use_peak_bytes"] == facts["eager_peak_bytes"]
    assert facts["measured_peak_bytes"] >= facts["eager_peak_bytes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtype", "fp64"], "--dtype: unknown dtype 'fp64'; use one of fp16, bf16, fp32, int8"),
        (["--chunks", "0"], "--chunks: 0 is too small"),
        (["--chunks", "1.5"], "--chunks: '1.5' is not allowed"),
        (["--batch", "0"], "--batch: 0 is too small"),
        (["--dtype", "int8", "--measure"], "--measure: a real forward pass runs in"),
        (["--curve", "curve.txt"], "--curve: 'curve.txt' must end in .csv or .json"),
    ],
)
def test_memory_bad_input(args, message):
    result = run("memory", "mobilenet_v2", "--res", "64", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: error: ")
    assert message in lines[0]


@pytest.fixture
def untraceable():
    name = "test_untraceable_memory"

    @register_model(name, family="test", summary="data-dependent", reference="test")
    def build(width: float = 1.0, num_classes: int = 1000):
        return DataDependent()

    yield name
    unregister_model(name)


def test_untraceable_model_is_one_line_exit_2(untraceable):
    result = run("memory", untraceable, "--res", "32")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cannot trace DataDependent" in lines[0]
    assert "Traceback" not in result.output


def test_compare_memory_columns():
    result = run(
        "compare", "--models", "mobilenet_v1,mobilenet_v2", "--res", "64", "--format", "csv",
        "--mem-dtype", "fp32", "--chunks", "4", "--no-latency",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from io import StringIO

    frame = pd.read_csv(StringIO(result.stdout)).set_index("model")
    # MobileNetV1 0.25..1.0 at 64: features.1's 1x1 conv, 32 -> 64 channels at 32x32, fp32.
    assert frame.loc["mobilenet_v1", "peak_act_bytes"] == (32 + 64) * 32 * 32 * 4
    assert frame.loc["mobilenet_v1", "max_tensor_bytes"] == 64 * 32 * 32 * 4
    assert (
        frame.loc["mobilenet_v2", "peak_act_bytes_efficient"]
        == (16 * 32 * 32 + 24 * 16 * 16 + 24 * 32 * 32) * 4
    )
    assert set(frame["mem_dtype"]) == {"fp32"}
    assert set(frame["mem_chunks"].astype(str)) == {"4"}


@pytest.fixture
def no_counting(monkeypatch):
    """MAdds are counted (slowly, with fvcore) and tested elsewhere: stand them in here."""
    from mbprof.core.records import CountReport

    def count(model, input_shape, graph=None, engine="fvcore"):
        return CountReport(madds=0, params=0, other_flops=0, layers=())

    monkeypatch.setattr("mbprof.analysis.counting.count", count)


def test_compare_no_memory_and_bad_options(no_counting):
    result = run("compare", "--res", "64", "--no-memory", "--format", "csv", "--no-latency")
    assert result.exit_code == 0, result.output
    assert "peak_act_bytes" not in result.stdout
    for args, message in (
        (["--mem-dtype", "float16"], "--mem-dtype: unknown dtype 'float16'"),
        (["--chunks", "-1"], "--chunks: -1 is too small"),
    ):
        result = run("compare", "--res", "64", *args)
        assert result.exit_code == 2
        assert message in result.stderr


def test_profile_shows_the_per_resolution_table(no_counting):
    result = run("profile", "mobilenet_v2", "--res", "64", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = {r["size"]: r for r in payload["tables"]["memory_per_resolution"]}
    assert rows["32x32"]["channels"] == 96  # features.2's expansion, materialized
    assert rows["32x32"]["channels_efficient"] == 16
    assert payload["facts"]["peak_act_bytes"] == (96 * 32 * 32 + 96 * 16 * 16) * 2
    text = run("profile", "mobilenet_v2", "--res", "64")
    assert text.exit_code == 0
    assert "Largest activation per spatial size" in text.stdout


def test_memory_help_has_an_example():
    result = run("memory", "--help")
    assert result.exit_code == 0
    assert "Example: mbprof memory" in result.stdout
