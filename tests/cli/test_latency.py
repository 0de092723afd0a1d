"""`mbprof bench` and the latency part of `mbprof compare`, through the CLI."""

from __future__ import annotations

import json
import signal
import sys

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from mbprof.cli import app
from tests.conftest import assert_one_line_error, counted
from tests.support.tiny_models import tiny_madds, tiny_models  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("tiny_models")
FAST = ["--min-time", "0.02", "--warmup", "1", "--threads", "1"]
LATENCY_COLUMNS = (
    "latency_ms latency_ms_per_image latency_p10_ms latency_p90_ms runs throughput_ips "
    "achieved_gflops machine_share_pct device device_name backend dtype batch threads "
    "memory_format fuse_bn torch_version cpu_model compile_s"
).split()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mbprof-cache"))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_bench_end_to_end_json_and_csv(tmp_path):
    result = run("bench", "mobilenet_v2", "--width", "0.35", "--res", "64", *FAST, "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    facts, (row,) = doc["facts"], doc["tables"]["latency"]
    assert facts["latency_ms"] == row["latency_ms"] > 0
    assert row["latency_p10_ms"] <= row["latency_ms"] <= row["latency_p90_ms"]
    assert facts["madds"] == counted("mobilenet_v2", 0.35, resolution=64).counts.madds
    assert row["threads"] == facts["threads"] == 1 and row["batch"] == 1
    assert row["torch_version"] == torch.__version__ and row["backend"] == "eager"
    assert set(LATENCY_COLUMNS) <= set(row)
    assert "latency_ms" in doc["columns"]  # the convention travels with the numbers

    out = tmp_path / "bench.csv"
    result = run(
        "bench", "test_tiny", "--res", "32", "--batch", "2", *FAST, "-f", "csv", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 1 and set(LATENCY_COLUMNS) <= set(frame.columns)
    assert frame.loc[0, "batch"] == 2 and frame.loc[0, "madds"] == tiny_madds(32)


def test_bench_table_names_what_it_measured():
    result = run("bench", "test_tiny", "--res", "32", *FAST, "--fuse-bn", "--channels-last")
    assert result.exit_code == 0, result.output
    for text in ("Latency", "ms per batch, median", "Machine share", "channels_last", "Threads"):
        assert text in result.stdout
    assert "folded 0 batch norms" in result.stdout  # the tiny model has none: said, not hidden


def test_compare_measures_latency_by_default(tmp_path):
    csv, md, js = tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.json"
    result = run(
        "compare", "-m", "test_tiny", "--res", "32,48", *FAST,
        "--csv", str(csv), "--markdown", str(md), "--json", str(js),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(csv)
    assert list(frame["madds"]) == [tiny_madds(32), tiny_madds(48)]
    assert set(LATENCY_COLUMNS) <= set(frame.columns)
    assert (frame["latency_ms"] > 0).all() and (frame["threads"] == 1).all()
    text = md.read_text()
    assert "Latency (ms)" in text and "Measured on cpu" in text and "batch 1, 1 thread," in text
    assert len(json.loads(js.read_text())["tables"]["configurations"]) == 2

    result = run("compare", "-m", "test_tiny", "--res", "32", "--no-latency", "-f", "csv")
    assert result.exit_code == 0 and "latency_ms" not in result.stdout


def test_compare_records_a_failing_configuration_and_goes_on(tmp_path):
    csv = tmp_path / "s.csv"
    result = run(
        "compare", "-m", "test_batch_one,test_tiny", "--res", "32", "--batch", "2", *FAST,
        "--csv", str(csv),
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # a figure not had: exit 1 (cli/_common)
    assert "1 of 2 configurations failed" in result.stderr
    frame = pd.read_csv(csv)
    assert frame.loc[0, "error"].startswith("RuntimeError") and pd.isna(frame.loc[0, "latency_ms"])
    assert pd.isna(frame.loc[1, "error"]) and frame.loc[1, "latency_ms"] > 0


def test_ctrl_c_keeps_the_rows_already_measured(tmp_path, monkeypatch):
    import mbprof.api.sweep

    real, calls = mbprof.api.sweep.interleaved_latency, []

    def interrupted_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # a real Ctrl-C, as the terminal sends it
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    # one configuration per interleaved group, so that the first row is finished when
    # the second group is interrupted
    monkeypatch.setattr(mbprof.api.sweep, "TIMING_GROUP", 1)
    monkeypatch.setattr(mbprof.api.sweep, "interleaved_latency", interrupted_on_second)
    csv, js = tmp_path / "s.csv", tmp_path / "s.json"
    result = run(
        "compare", "-m", "test_tiny", "--res", "32,48,64", *FAST, "--csv", str(csv),
        "--json", str(js),
    )  # fmt: skip
    assert result.exit_code == 130
    assert "interrupted after 1 of 3 configurations" in result.stderr
    frame = pd.read_csv(csv)
    assert list(frame["resolution"]) == [32] and frame.loc[0, "latency_ms"] > 0
    assert len(json.loads(js.read_text())["tables"]["configurations"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch: 0 is too small; give an integer >= 1"),
        (["--threads", "0"], "--threads: 0 is too small; give an integer >= 1"),
        (["--backend", "tvm"], "--backend: 'tvm' is not allowed; choose one of eager, compile"),
        (["--dtype", "fp64"], "--dtype: 'fp64' is not allowed; choose one of fp32, fp16, bf16"),
        (["--device", "tpu"], "--device: 'tpu' is not allowed"),
        (["--backend", "onnxruntime", "--dtype", "fp16"], "runs fp32 models only"),
        (["--min-time", "0"], "--min-time"),
        (["--warmup", "-1"], "--warmup: -1 is too small"),
    ],
)
@pytest.mark.parametrize("command", ["bench", "compare"])
def test_bad_latency_options_exit_2_in_one_line(command, args, message):
    target = ["test_tiny"] if command == "bench" else ["-m", "test_tiny"]
    assert_one_line_error(run(command, *target, "--res", "32", *args), message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_exits_2():
    for command in (["bench", "test_tiny"], ["compare", "-m", "test_tiny"]):
        result = run(*command, "--res", "32", "--device", "cuda")
        assert_one_line_error(result, "--device cuda", "sees no CUDA GPU", "use cpu or auto")


def test_missing_onnx_extra_exits_2_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = run("bench", "test_tiny", "--res", "32", "--backend", "onnxruntime")
    assert_one_line_error(
        result, "--backend onnxruntime needs onnxruntime", 'pip install "mbprof[onnx]"'
    )


@pytest.mark.slow  # a real inductor compile: a C++ build
def test_compile_backend_with_inductor_end_to_end():
    """torch.compile's real backend (inductor builds C++): slow, so opt-in."""
    result = run("bench", "mobilenet_v2", "--width", "0.35", "--res", "64", *FAST,
                 "--backend", "compile", "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["tables"]["latency"]
    assert row["backend"] == "compile" and row["compile_s"] > 0 and row["latency_ms"] > 0


@pytest.fixture
def verdict(monkeypatch):
    """Set the verdict every timing gets (the machine's real load is the verdict tests'
    subject, not these)."""
    from mbprof.analysis.latency import harness

    def set_to(reasons: tuple[str, ...]) -> None:
        # nor a round that stayed an outlier on a loaded machine
        monkeypatch.setattr(harness.Interleaved, "reasons", lambda self: ())
        monkeypatch.setattr(
            harness, "judge", lambda *a, **k: ("unstable" if reasons else "stable", reasons)
        )

    return set_to


def test_an_unstable_latency_is_marked_in_every_format(tmp_path, verdict):
    verdict(("spread 80% > 25% ((p90 - p10) / median)",))
    csv, md = tmp_path / "s.csv", tmp_path / "s.md"
    result = run("compare", "-m", "test_tiny", "--res", "32", *FAST, "--csv", str(csv),
                 "--markdown", str(md))  # fmt: skip
    assert result.exit_code == 0, result.output
    row = pd.read_csv(csv).iloc[0]
    assert row["latency_verdict"] == "unstable" and row["latency_reasons"].startswith("spread 80%")
    for text in (result.stdout, md.read_text()):
        assert "Timing" in text and "| unstable |" in text.replace("│", "|").replace("  ", " ")
        (note,) = [line for line in text.splitlines() if "UNSTABLE latency" in line]
        assert "test_tiny 1.0@32: spread 80% > 25%" in note
    result = run("bench", "test_tiny", "--res", "32", *FAST)
    assert (
        "UNSTABLE, see Timing" in result.stdout
        and "- UNSTABLE latency: spread 80%" in result.stdout
    )
    result = run("bench", "test_tiny", "--res", "32", *FAST, "-f", "json")
    assert json.loads(result.stdout)["facts"]["latency_verdict"] == "unstable"


def test_stable_latencies_say_so_once_and_machine_share_only_where_shown(verdict):
    verdict(())
    result = run("compare", "-m", "test_tiny", "--res", "32", *FAST)
    assert result.exit_code == 0, result.output
    assert "Timing: every latency is stable." in result.stdout
    assert "unstable" not in result.stdout.split("- ")[0]  # no mark column in the table
    assert "Machine %" not in result.stdout  # not a column of compare's table
    result = run("bench", "test_tiny", "--res", "32", *FAST)
    assert "Machine share: that rate as a share" in result.stdout


@pytest.fixture
def ceilings(monkeypatch):
    """Fixed machine ceilings: the per-layer tests do not measure the machine."""
    from mbprof.analysis.latency import roofline

    monkeypatch.setattr(roofline, "machine_peak_gflops", lambda *a, **k: 50.0)
    monkeypatch.setattr(roofline, "machine_bandwidth_gbs", lambda *a, **k: 10.0)


@pytest.mark.usefixtures("ceilings")
def test_bench_layers_as_json_with_its_conventions():
    result = run("bench", "test_tiny", "--res", "32", *FAST, "--layers", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    layers = doc["tables"]["layers"]
    assert [r["path"] for r in layers][-1] == "(outside any layer)"
    conv = next(r for r in layers if r["path"] == "conv")
    assert conv["madds"] == tiny_madds(32) - 12 and conv["kernel"] == "3x3"
    assert sum(r["time_share_pct"] for r in layers) == pytest.approx(100)
    assert doc["layers"]["ridge_flop_per_byte"] == pytest.approx(5.0)
    assert any("The profiler's own overhead" in note for note in doc["notes"])
    assert "bytes_moved" in doc["columns"] and "roof_pct" in doc["columns"]


@pytest.mark.usefixtures("ceilings")
def test_bench_roofline_draws_the_layers_and_csv_gives_their_rows(tmp_path):
    png = tmp_path / "roof.png"
    result = run("bench", "test_tiny", "--res", "32", *FAST, "--roofline", str(png), "-f", "csv")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in result.stderr
    assert result.stdout.startswith("path,type,kind,kernel,stride,groups")  # the layers
    assert "\nconv,Conv2d,conv,3x3,1x1,1," in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "--backend", "compile"], "--backend compile cannot be profiled per layer"),
        (["--roofline", "roof.txt"], "--roofline"),
    ],
)
def test_bench_layers_bad_input_exits_2_in_one_line(args, message):
    result = run("bench", "test_tiny", "--res", "32", *FAST, *args)
    assert_one_line_error(result, message)
    if "compile" in args:
        assert "eager, onnxruntime or executorch" in result.stderr


@pytest.mark.parametrize("columns", [80, pytest.param(120, marks=pytest.mark.slow)])
def test_a_timed_comparison_fits_the_terminal_with_its_latency(verdict, columns):
    verdict(("spread 80.0% > 25% ((p90 - p10) / median)",))
    args = ["compare", "-m", "mobilenet_v2,mobilenet_v3_large", "--widths", "0.5", "--res", "32"]
    result = CliRunner().invoke(app, [*args, *FAST], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= columns and "…" not in result.stdout
    header = " ".join(line for line in lines if line.startswith("┃"))
    assert "Latency" in header and "Timing" in header and "mobilenet_v3_large" in result.stdout
