"""Output checks of exported backends: a relative tolerance, shown to fail on a wrong
export (one layer of the exported model corrupted), and calibrated weights that make the
check meaningful."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mbprof
from mbprof.analysis.latency import onnx_runtime, runtimes
from mbprof.analysis.latency.harness import time_model
from mbprof.analysis.latency.machine import resolve_settings
from mbprof.api import build_sized
from mbprof.api.building import timing_ready
from mbprof.core.settings import LatencySettings

FAST = dict(min_time_s=0.001, warmup=1, threads=1)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mbprof-cache"))


def calibrated(width: float = 0.25, res: int = 64):
    spec = mbprof.make_spec(
        "mobilenet_v1", width=width, resolution=res
    )  # few nodes: quick to export
    return spec, timing_ready(spec, build_sized(spec).model)


def corrupting(monkeypatch, scale: float) -> list[str]:
    """Make every ONNX export have the weights of one convolution multiplied by ``scale``
    before its session opens; returns the names of the corrupted weights."""
    import onnx
    from onnx import numpy_helper

    real = onnx_runtime.onnx_session
    corrupted: list[str] = []

    def session(model, example, threads, folder):
        real(model, example, threads, folder)  # export
        path = Path(folder) / "model.onnx"
        graph = onnx.load(str(path))
        weights = [t for t in graph.graph.initializer if len(t.dims) == 4 and t.dims[2] == 3]
        target = weights[len(weights) // 2]  # a depthwise 3x3 filter in the middle
        # Every filter of it, not one weight: one weight could be near 0 (for one random
        # state in about 60 it moved the output by 4e-5); the whole layer moves it by more
        # than the output's own scale for each of 31 states tried.
        values = numpy_helper.to_array(target) * scale
        target.CopyFrom(numpy_helper.from_array(values, target.name))
        corrupted.append(target.name)
        onnx.save(graph, str(path))
        import onnxruntime as ort

        opened = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return opened, opened.get_inputs()[0].name

    monkeypatch.setattr(onnx_runtime, "onnx_session", session)
    return corrupted


@pytest.mark.slow  # an ONNX export (seconds)
def test_a_corrupted_export_fails_the_output_check(monkeypatch):
    torch.manual_seed(49)  # the state in which one corrupted weight went unnoticed
    spec, model = calibrated()
    names = corrupting(monkeypatch, scale=-4.0)
    settings = resolve_settings(LatencySettings(backend="onnxruntime", **FAST))
    with pytest.raises(RuntimeError, match="ONNX Runtime output differs from torch's"):
        time_model(model, spec.input_shape(), settings, madds=1)
    assert len(names) == 1


@pytest.mark.slow  # an ONNX export (seconds)
def test_an_untouched_export_of_a_calibrated_model_passes():
    spec, model = calibrated()
    t = time_model(
        model,
        spec.input_shape(),
        resolve_settings(LatencySettings(backend="onnxruntime", **FAST)),
        madds=1,
    )
    assert t.latency_ms > 0


def test_the_tolerance_is_relative_to_the_outputs_scale():
    for scale in (1e-9, 1.0, 1e4):
        expected = torch.tensor([[1.0, -2.0, 3.0]]) * scale
        runtimes.check_same_output(expected, expected.numpy() * (1 + 1e-4), "X")
        with pytest.raises(RuntimeError, match=r"relative 0\.01 > 0\.001"):
            runtimes.check_same_output(expected, expected.numpy() * 1.01, "X")
    nan = torch.tensor([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="differs"):
        runtimes.check_same_output(nan, [[1.0, float("nan")]], "X")


@pytest.mark.parametrize(
    "name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v1_g3"]
)
def test_calibrated_models_give_logits_of_order_one(name):
    res = 64
    spec = mbprof.make_spec(name, width=0.5, resolution=res)
    torch.manual_seed(1)  # the random initialisation, as every build gets one
    model = build_sized(spec).model
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        before = model(x).std().item()
    ready = timing_ready(spec, model)
    with torch.inference_mode():
        after = ready(x).std().item()
    # of order one: 1 on the calibration's own images, near it on others (MobileNetV3's
    # squeeze-excitation gates make it vary most, up to about 7 over seeds)
    assert ready is model and before < 0.1 and 0.2 < after < 10, (before, after)
