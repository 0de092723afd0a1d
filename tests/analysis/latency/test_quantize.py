"""int8: which settings may ask for it, ONNX Runtime's static QDQ path on a small network,
the closeness figures on outputs whose answer is known, and the one-line refusals of bad
input on the command line."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mbprof.analysis.latency.harness import time_model
from mbprof.analysis.latency.machine import resolve_settings
from mbprof.analysis.latency.runtimes import PROBE_IMAGES, closeness
from mbprof.core.errors import MbprofError
from mbprof.core.records import Environment, Timing
from mbprof.core.settings import LatencySettings, check_latency
from mbprof.frame.rows import latency_columns
from mbprof.models import register_model, unregister_model
from mbprof.models.calibration import calibrate
from tests.conftest import assert_one_line_error
from tests.support.tiny_models import tiny_models  # noqa: F401  (a fixture)

FAST = dict(min_time_s=0.001, warmup=1, threads=1)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mbprof-cache"))


def small_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        nn.Conv2d(32, 64, 1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 100),
    )
    return calibrate(net, (16, 16))


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("backend", ["eager", "compile"])
def test_int8_on_a_backend_without_an_int8_path_is_refused(backend):
    with pytest.raises(MbprofError, match=f"the {backend} backend has no int8 path") as info:
        check_latency(LatencySettings(backend=backend, quantize="int8"))
    assert info.value.field == "quantize"
    assert "executorch or onnxruntime" in str(info.value)


def test_int8_from_fp16_is_refused():
    with pytest.raises(MbprofError, match="quantizes an fp32 model") as info:
        check_latency(LatencySettings(backend="onnxruntime", quantize="int8", dtype="fp16"))
    assert "use dtype fp32" in str(info.value)


def test_an_unknown_quantization_is_refused():
    with pytest.raises(MbprofError, match="quantize: 'int4' is not allowed; choose one of"):
        check_latency(LatencySettings(quantize="int4"))


def test_quantize_is_lower_cased_and_kept():
    settings = check_latency(LatencySettings(backend="ONNXRuntime", quantize="INT8"))
    assert (settings.backend, settings.quantize) == ("onnxruntime", "int8")


# --------------------------------------------------------------------------- closeness


def form(model, shape=(1, 3, 16, 16), notes=None):
    """What closeness reads of a deployed model (its backend named "x")."""
    settings = SimpleNamespace(backend="x")
    return SimpleNamespace(model=model, example=torch.zeros(shape), notes=notes, settings=settings)


def test_closeness_of_outputs_whose_answer_is_known():
    model = small_net()
    notes: list[str] = []
    same = closeness(form(model, notes=notes), model)
    assert same == {"int8_cosine": pytest.approx(1.0), "int8_top1_agreement": 1.0}
    assert len(notes) == 1 and "not an accuracy figure" in notes[0]
    assert f"on {PROBE_IMAGES} random images" in notes[0]
    flipped = closeness(form(model, notes=[]), lambda x: -model(x))
    assert flipped["int8_cosine"] == pytest.approx(-1.0)
    warned: list[str] = []
    zeros = closeness(form(model, notes=warned), lambda x: torch.zeros(1, 100))
    assert zeros["int8_cosine"] == 0.0  # all-zero logits: what an int8 model of ~1e-9 gives
    assert any("strays far from fp32 (cosine 0.00)" in note for note in warned)


def test_closeness_covers_the_probe_images_at_any_batch():
    model = small_net()
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return model(x)

    closeness(form(model, (5, 3, 16, 16), []), counting)
    assert sum(calls) >= PROBE_IMAGES and all(n == 5 for n in calls)


def test_speedup_is_fp32_over_int8_and_rows_hold_what_was_measured():
    env = Environment(
        "t", "cpu", "c", "c", 2, 1, "onnxruntime", "1", "fp32", 1, "contiguous", False
    )
    timing = Timing(2.0, 1.9, 2.1, 5, 5, 1, 1, 0.1, env, fp32_latency_ms=5.0, deployed_bytes=7)
    assert timing.int8_speedup == 2.5
    row = latency_columns(timing)
    assert row["int8_speedup"] == 2.5 and row["deployed_bytes"] == 7
    assert "int8_cosine" not in row  # not measured: no empty column
    assert Timing(2.0, 1.9, 2.1, 5, 5, 1, 1, 0.1, env).int8_speedup is None


def test_the_environment_note_says_int8():
    import pandas as pd

    from mbprof.render.latency_view import environment_text

    def note(quantize: str) -> str:
        env = Environment(
            "t", "cpu", "c", "c", 2, 1, "executorch", "1", "fp32", 1, "contiguous", False,
            quantize=quantize,
        )  # fmt: skip
        return environment_text(
            pd.DataFrame([latency_columns(Timing(2.0, 1.9, 2.1, 5, 5, 1, 1, 0.1, env))])
        )

    assert note("int8").endswith("quantized to int8 from fp32.")
    assert "int8" not in note("none")


# --------------------------------------------------------------------------- ONNX Runtime


@pytest.mark.slow  # two ONNX exports and a quantization
def test_onnxruntime_int8_is_smaller_close_and_timed_against_fp32():
    pytest.importorskip("onnxruntime")
    settings = resolve_settings(LatencySettings(backend="onnxruntime", quantize="int8", **FAST))
    t = time_model(small_net(), (1, 3, 16, 16), settings, madds=1)
    assert t.environment.quantize == "int8" and t.environment.backend == "onnxruntime"
    # int8 weights: the file shrinks by most of the 4 bytes of each of ~7,000 weights
    assert t.deployed_bytes < t.fp32_deployed_bytes - 14_000
    assert t.fp32_latency_ms > 0 and t.int8_speedup == t.fp32_latency_ms / t.latency_ms
    assert t.int8_cosine > 0.9
    assert t.machine_peak_gflops is None
    assert any("static QDQ" in note for note in t.notes)


@pytest.mark.slow  # an ONNX export (seconds)
def test_onnxruntime_fp32_gives_its_file_size():
    pytest.importorskip("onnxruntime")
    settings = resolve_settings(LatencySettings(backend="onnxruntime", **FAST))
    model = small_net()
    t = time_model(model, (1, 3, 16, 16), settings, madds=1)
    weights = 4 * sum(p.numel() for p in model.parameters())
    assert weights * 0.9 <= t.deployed_bytes <= weights + 50_000  # the weights are inside
    assert t.fp32_latency_ms is None and t.int8_speedup is None


# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--quantize", "int8"], ("--quantize int8: the eager backend has no int8 path",)),
        (
            ["--quantize", "int8", "--backend", "onnxruntime", "--dtype", "fp16"],
            ("--quantize int8 quantizes an fp32 model", "use dtype fp32"),
        ),
        (["--quantize", "int4"], ("--quantize: 'int4' is not allowed",)),
    ],
)
@pytest.mark.parametrize("command", ["bench", "compare"])
def test_bad_quantize_options_exit_2_in_one_line(run, command, args, fragments):
    target = ["mobilenet_v2"] if command == "bench" else ["-m", "mobilenet_v2"]
    assert_one_line_error(run(command, *target, "--res", "32", *args), *fragments)


def test_executorch_without_its_extra_exits_2_naming_it(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)
    result = run("bench", "mobilenet_v2", "--res", "32", "--backend", "executorch")
    assert_one_line_error(
        result, "--backend executorch needs executorch", 'pip install "mbprof[executorch]"'
    )


class DataDependent(nn.Module):
    """A model torch.export cannot capture (Python control flow on a tensor's value)."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return y if y.sum() > 0 else -y


@pytest.fixture
def unexportable():
    register_model("test_unexportable", family="test", summary="", reference="")(DataDependent)
    yield "test_unexportable"
    unregister_model("test_unexportable")


@pytest.mark.slow  # whole CLI runs that export
@pytest.mark.usefixtures("tiny_models")
def test_an_export_that_fails_is_one_line_or_an_error_cell(run, unexportable):
    pytest.importorskip("executorch")
    fast = ["--res", "32", "--min-time", "0.001", "--warmup", "1", "--threads", "1"]
    result = run("bench", unexportable, *fast, "--backend", "executorch")
    assert_one_line_error(result, "torch.export could not capture the model")
    result = run("compare", "-m", f"{unexportable},test_tiny", *fast,
                 "--backend", "onnxruntime", "--no-memory", "-f", "json")  # fmt: skip
    assert result.exit_code == 1, result.output  # printed whole, the missing latency named
    rows = json.loads(result.stdout)["tables"]["configurations"]
    assert "ONNX export failed" in rows[0]["error"] and rows[1]["latency_ms"] > 0
    assert rows[1]["deployed_bytes"] > 0


def test_the_latency_cache_keeps_int8_apart_from_fp32():
    import mbprof
    from mbprof.api.cache import key_name, latency_key

    base = {"kind": "analysis", "spec": "test"}
    keys = {
        quantize: key_name(
            latency_key(
                base, mbprof.make_latency_settings(backend="onnxruntime", quantize=quantize)
            )
        )
        for quantize in ("none", "int8")
    }
    assert keys["none"] != keys["int8"]
