"""The latency harness: behaviour, never timings (the machine is shared and noisy)."""

from __future__ import annotations

import json
import math
import statistics
import sys

import pytest
import torch
from torch import nn

import mbprof
from mbprof.analysis.deploy import fold_batchnorm
from mbprof.analysis.latency import harness, machine, onnx_runtime, runtimes
from mbprof.analysis.latency.harness import time_model
from mbprof.analysis.latency.machine import (
    Clock,
    machine_peak_gflops,
    resolve_settings,
    time_blocks,
)
from mbprof.core.errors import MbprofError
from mbprof.core.records import Environment, Timing
from mbprof.core.settings import LatencySettings
from mbprof.frame.rows import latency_columns
from mbprof.models import create_model
from tests.support.tiny_models import tiny_madds, tiny_models  # noqa: F401  (a fixture)

FAST = dict(min_time_s=0.001, warmup=1, threads=1)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """One machine-reference cache per test session, never the user's ~/.cache."""
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mbprof-cache"))


class Recorder(nn.Module):
    """A small conv net that records, at each forward, what the harness set up."""

    seen: list[dict] = []  # a class attribute: survives the harness's deepcopy

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Recorder.seen.append(
            {
                "inference": torch.is_inference_mode_enabled(),
                "threads": torch.get_num_threads(),
                "channels_last": x.is_contiguous(memory_format=torch.channels_last)
                and not x.is_contiguous(),
                "dtype": x.dtype,
                "batch": x.shape[0],
            }
        )
        return self.head(self.body(x).mean((2, 3)))


def settings(**kwargs) -> LatencySettings:
    return resolve_settings(LatencySettings(**{**FAST, **kwargs}))


# --------------------------------------------------------------------------- the block timer


class FakeClock:
    """A clock whose blocks take exactly what the test says: overhead + runs x run_s."""

    def __init__(self, run_s: float, overhead_s: float = 0.0, jitter=None) -> None:
        self.run_s, self.overhead_s, self.jitter = run_s, overhead_s, jitter
        self.blocks: list[int] = []

    def sync(self) -> None:
        pass

    def time_block(self, fn, runs: int) -> float:
        for _ in range(runs):
            fn()
        self.blocks.append(runs)
        extra = self.jitter(len(self.blocks)) if self.jitter else 0.0
        return self.overhead_s + runs * (self.run_s + extra)


def test_time_blocks_warms_up_then_times_until_min_time():
    calls = []
    run_s = 1 / 128  # binary fractions: the sums below are exact
    clock = FakeClock(run_s=run_s)
    per_run, runs = time_blocks(
        lambda: calls.append(1), min_time_s=10 * run_s, warmup=3, clock=clock
    )
    # 3 warm-up calls + 1 sizing run + timed runs: ten one-run blocks fill the minimum time
    assert runs == 1
    assert len(per_run) == 10
    assert len(calls) == 3 + 1 + 10
    assert statistics.median(per_run) == run_s


def test_time_blocks_groups_runs_when_the_clock_costs_too_much():
    # the clock costs 1 us, a run 100 us: 1e-6 / (1e-3 x 1e-4) = 10 runs per block
    clock = FakeClock(run_s=1e-4, overhead_s=1e-6)
    per_run, runs = time_blocks(lambda: None, min_time_s=0.01, warmup=0, clock=clock)
    assert runs == 10
    assert sum(clock.blocks[-len(per_run) :]) == len(per_run) * 10
    assert len(per_run) >= machine.MIN_BLOCKS


def test_time_blocks_percentiles_by_hand():
    # block k (1-based, after 6 sizing blocks) takes k ms: per-run times 1..20 ms
    clock = FakeClock(run_s=0.0, jitter=lambda k: max(k - 6, 0) * 1e-3)
    per_run, _ = time_blocks(lambda: None, min_time_s=0.2095, warmup=0, clock=clock, min_blocks=5)
    times = [k * 1e-3 for k in range(1, len(per_run) + 1)]
    assert len(per_run) == 20  # 1 + 2 + ... + 19 ms = 190 ms < 209.5 ms <= 210 ms
    p10, median, p90 = harness.deciles(per_run)
    assert median == pytest.approx(statistics.median(times))
    # inclusive deciles of 1..20: p10 = 1 + 0.1 x 19 = 2.9, p90 = 1 + 0.9 x 19 = 18.1 (ms)
    assert p10 == pytest.approx(2.9e-3)
    assert p90 == pytest.approx(18.1e-3)


def test_time_blocks_keeps_min_blocks_for_a_slow_run():
    per_run, runs = time_blocks(
        lambda: None, min_time_s=0.001, warmup=0, clock=FakeClock(run_s=0.5)
    )
    assert len(per_run) == machine.MIN_BLOCKS and runs == 1


def test_cpu_clock_times_real_work():
    clock = Clock()
    assert clock.time_block(lambda: sum(range(10_000)), 3) > 0


# --------------------------------------------------------------------------- figures


def test_derived_figures_by_hand():
    env = Environment(
        torch_version="x",
        device="cpu",
        device_name="cpu",
        cpu_model="cpu",
        cpu_count=2,
        threads=2,
        backend="eager",
        backend_version="x",
        dtype="fp32",
        batch=4,
        memory_format="contiguous",
        fuse_bn=False,
    )
    t = Timing(
        latency_ms=20.0,
        latency_p10_ms=19.0,
        latency_p90_ms=22.0,
        runs=50,
        blocks=50,
        runs_per_block=1,
        warmup=10,
        min_time_s=1.0,
        environment=env,
        madds=300_000_000,
        machine_peak_gflops=400.0,
    )
    assert t.latency_ms_per_image == 5.0
    assert t.throughput_ips == pytest.approx(200.0)  # 4 images / 20 ms
    assert t.achieved_gflops == pytest.approx(120.0)  # 2 x 3e8 x 4 / 0.02 s = 1.2e11
    assert t.machine_share_pct == pytest.approx(30.0)
    row = latency_columns(t)
    assert row["batch"] == 4 and row["latency_ms_per_image"] == 5.0


def test_timing_carries_its_environment_and_setup():
    Recorder.seen.clear()
    t = time_model(
        Recorder(), (2, 3, 16, 16), settings(batch=2, threads=1, channels_last=True), madds=1
    )
    env = t.environment
    assert env.torch_version == torch.__version__
    assert env.device == "cpu" and env.backend == "eager" and env.dtype == "fp32"
    assert (env.batch, env.threads, env.memory_format) == (2, 1, "channels_last")
    assert env.cpu_count >= 1 and env.cpu_model and env.device_name == env.cpu_model
    # what the forward passes saw: inference mode, the threads, the layout, the batch
    assert all(s["inference"] for s in Recorder.seen)
    assert {s["threads"] for s in Recorder.seen} == {1}
    assert all(s["channels_last"] and s["batch"] == 2 for s in Recorder.seen)
    assert t.runs == len(Recorder.seen) - 1 - 1  # all but 1 warm-up and 1 sizing run
    assert t.latency_p10_ms <= t.latency_ms <= t.latency_p90_ms
    row = latency_columns(t)
    for key in (
        "latency_ms latency_ms_per_image latency_p10_ms latency_p90_ms runs throughput_ips "
        "achieved_gflops machine_share_pct device device_name backend dtype batch threads "
        "memory_format fuse_bn torch_version cpu_model compile_s"
    ).split():
        assert key in row


def test_cpu_model_matches_proc_cpuinfo():
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line]
    from mbprof.analysis.latency.machine import cpu_model

    assert cpu_model() in names


def test_madds_are_counted_when_not_given_and_feed_gflops():
    t = time_model(Recorder(), (1, 3, 16, 16), settings())
    # by hand: conv 3->8, 3x3, 16x16 output: 8 x 3 x 9 x 256 = 55,296; linear 8->5: 40
    assert t.madds == 55_296 + 40
    assert t.achieved_gflops == pytest.approx(2 * t.madds / (t.latency_ms * 1e-3) / 1e9)
    assert t.machine_share_pct == pytest.approx(100 * t.achieved_gflops / t.machine_peak_gflops)


def test_half_precision_on_the_cpu_runs_in_that_dtype(monkeypatch):
    # The machine's bf16 matrix-product ceiling takes many seconds to measure on a CPU
    # without bf16 units, and is not what this test is about.
    monkeypatch.setattr(harness, "machine_peak_gflops", lambda *args, **kwargs: 100.0)
    Recorder.seen.clear()
    t = time_model(Recorder(), (1, 3, 16, 16), settings(dtype="bf16"), madds=1)
    assert t.environment.dtype == "bf16"
    assert {s["dtype"] for s in Recorder.seen} == {torch.bfloat16}


# --------------------------------------------------------------------------- threads


def test_threads_are_restored_after_a_run_and_after_a_failure():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    time_model(Recorder(), (1, 3, 16, 16), settings(threads=other), madds=1)
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="boom"):
        time_model(Broken(), (1, 3, 16, 16), settings(threads=other), madds=1)
    assert torch.get_num_threads() == before


def test_default_threads_are_torchs():
    assert resolve_settings(LatencySettings()).threads == torch.get_num_threads()


# --------------------------------------------------------------------------- batch-norm folding


def _randomise_bn(model: nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def test_fold_batchnorm_keeps_the_output_of_mobilenet_v2():
    model = create_model("mobilenet_v2", width=0.35)
    _randomise_bn(model)
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    fused, folded, left = fold_batchnorm(model)
    assert (folded, left) == (bn_count, 0) and bn_count == 52
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 52  # untouched
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected, got = model(x), fused(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


def test_fold_batchnorm_falls_back_for_untraceable_models():
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
            self.extra = nn.BatchNorm2d(4)  # not after a conv: stays

        def forward(self, x):
            y = self.block(x)
            if y.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                y = y * 1.0
            return self.extra(y)

    model = Untraceable().eval()
    _randomise_bn(model)
    fused, folded, left = fold_batchnorm(model)
    assert (folded, left) == (1, 1)
    x = torch.randn(1, 3, 12, 12)
    with torch.inference_mode():
        assert torch.allclose(fused(x), model(x), atol=1e-5)


def test_fuse_bn_setting_measures_the_folded_model():
    model = create_model("mobilenet_v2", width=0.35)
    t = time_model(model, (1, 3, 64, 64), settings(fuse_bn=True), madds=1)
    assert t.environment.fuse_bn is True
    assert any("folded 52 batch norms" in note for note in t.notes)


# --------------------------------------------------------------------------- backends


@pytest.mark.slow  # an ONNX export (seconds)
def test_onnxruntime_runs_a_real_session(monkeypatch):
    import onnxruntime

    model = Recorder().eval()
    _randomise_bn(model)
    calls = []
    real_session = onnx_runtime.onnx_session

    def spy(model, example, threads, folder):
        session, name = real_session(model, example, threads, folder)
        calls.append((session, name, example))
        return session, name

    monkeypatch.setattr(onnx_runtime, "onnx_session", spy)
    t = time_model(model, (1, 3, 16, 16), settings(backend="onnxruntime"), madds=1)
    ((session, name, example),) = calls
    assert isinstance(session, onnxruntime.InferenceSession)
    assert session.get_session_options().intra_op_num_threads == 1
    # the session computes the model: a second, independent run against torch
    with torch.inference_mode():
        expected = model(example).numpy()
    got = session.run(None, {name: example.numpy()})[0]
    assert got.shape == expected.shape == (1, 5)
    assert abs(got - expected).max() <= 1e-4 * abs(expected).max()
    assert t.environment.backend == "onnxruntime"
    assert t.environment.backend_version == onnxruntime.__version__
    assert t.compile_s is not None and t.compile_s > 0 and t.runs >= machine.MIN_BLOCKS


def test_a_backend_with_another_output_is_refused():
    expected = torch.tensor([[1.0, -2.0, 3.0]])
    runtimes.check_same_output(expected, expected.numpy() * (1 + 1e-6), "X")
    with pytest.raises(RuntimeError, match="X output differs from torch's"):
        runtimes.check_same_output(expected, expected.numpy() * 1.01, "X")
    with pytest.raises(RuntimeError, match="X returned shape"):
        runtimes.check_same_output(expected, expected.numpy()[:, :2], "X")


@pytest.mark.slow  # an ONNX export attempt (seconds)
def test_onnx_export_failure_is_one_clear_runtime_error():
    class Unexportable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.conv(x)
            return y.mean((2, 3)) * (int(y.sum().item() > 0) + 1)  # data-dependent

    with pytest.raises(RuntimeError, match="ONNX export failed") as info:
        time_model(Unexportable().eval(), (1, 3, 16, 16), settings(backend="onnxruntime"), madds=1)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


@pytest.mark.slow  # dynamo's first trace takes half a minute on 2 cores
def test_compile_time_is_reported_apart_from_latency():
    # dynamo with its "eager" backend: the same plumbing as inductor, without a C++ build
    t = time_model(
        Recorder(), (1, 3, 16, 16), settings(backend="compile", compile_backend="eager"), madds=1
    )
    assert t.environment.backend == "compile"
    assert t.compile_s is not None and t.compile_s > 0
    assert any("torch.compile (eager)" in note for note in t.notes)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(device="tpu"), "device: 'tpu' is not allowed; choose one of auto, cpu, cuda"),
        (dict(batch=0), "batch: 0 is too small; give an integer >= 1"),
        (dict(threads=0), "threads: 0 is too small; give an integer >= 1"),
        (dict(dtype="fp64"), "dtype: 'fp64' is not allowed; choose one of fp32, fp16, bf16"),
        (dict(backend="tvm"), "backend: 'tvm' is not allowed"),
        (dict(min_time_s=0), "min_time_s"),
        (dict(warmup=-1), "warmup: -1 is too small; give an integer >= 0"),
        (dict(backend="onnxruntime", dtype="fp16"), "runs fp32 models only"),
        (dict(backend="onnxruntime", channels_last=True), "ONNX Runtime chooses its own"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(kwargs, message):
    with pytest.raises(MbprofError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_settings(LatencySettings(**kwargs))


def test_device_choice_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_settings(LatencySettings(device="auto")).device == "cpu"
    with pytest.raises(MbprofError, match="device cuda: torch .* sees no CUDA GPU"):
        resolve_settings(LatencySettings(device="cuda"))


def test_device_choice_with_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    assert resolve_settings(LatencySettings(device="auto")).device == "cuda"
    # ONNX Runtime runs on the CPU, so "auto" picks the CPU for it
    assert resolve_settings(LatencySettings(device="auto", backend="onnxruntime")).device == "cpu"
    with pytest.raises(MbprofError, match="use device cpu"):
        resolve_settings(LatencySettings(device="cuda", backend="onnxruntime"))
    with pytest.raises(MbprofError, match="dtype bf16: Old GPU does not support bfloat16"):
        resolve_settings(LatencySettings(device="cuda", dtype="bf16"))


def test_a_dtype_the_device_cannot_run_is_refused(monkeypatch):
    def cannot(self, x):
        raise RuntimeError("\"slow_conv2d_cpu\" not implemented for 'Half'\nmore text")

    monkeypatch.setattr(nn.Hardswish, "forward", cannot)
    machine._dtype_runs.cache_clear()  # the probe runs once per process
    with pytest.raises(MbprofError, match=r"dtype fp16 cannot run on cpu .*not implemented"):
        resolve_settings(LatencySettings(dtype="fp16"))
    machine._dtype_runs.cache_clear()


def test_missing_onnx_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MbprofError, match=r'pip install "mbprof\[onnx\]"'):
        resolve_settings(LatencySettings(backend="onnxruntime"))


def test_input_batch_must_match_the_settings():
    with pytest.raises(MbprofError, match="input batch 2 differs"):
        time_model(Recorder(), (2, 3, 16, 16), settings(batch=1), madds=1)


# --------------------------------------------------------------------------- machine reference


def test_machine_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = machine.measure_peak

    def spy(device, threads, dtype, min_time_s=0.5):
        calls.append((device, threads, dtype))
        return real(device, threads, dtype, min_time_s=0.02, size=128)

    monkeypatch.setattr(machine, "measure_peak", spy)
    first = machine_peak_gflops("cpu", 1, "fp32")
    assert first > 0 and math.isfinite(first) and len(calls) == 1
    assert machine_peak_gflops("cpu", 1, "fp32") == first and len(calls) == 1
    path = tmp_path / "cache" / "machine_peak.json"
    entry = json.loads(path.read_text())[machine.peak_key("cpu", 1, "fp32")]
    assert entry["gflops"] == first and entry["matmul_n"] == 128

    machine_peak_gflops("cpu", 2, "fp32")  # other threads: another entry
    assert len(calls) == 2 and len(json.loads(path.read_text())) == 2
    machine_peak_gflops("cpu", 1, "fp32", refresh=True)
    assert len(calls) == 3

    path.write_text("{not json")  # a damaged cache is measured again and rewritten
    machine_peak_gflops("cpu", 1, "fp32")
    assert len(calls) == 4 and machine.peak_key("cpu", 1, "fp32") in json.loads(path.read_text())


def test_a_reference_below_a_models_rate_is_measured_again_keeping_the_best(tmp_path, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path))
    rates = iter([5.0, 3.0, 8.0])  # what three measurements of the matrix product give
    monkeypatch.setattr(machine, "measure_peak", lambda *a, **k: (next(rates), 1024))
    assert machine_peak_gflops("cpu", 1, "fp32") == 5.0
    assert machine_peak_gflops("cpu", 1, "fp32", at_least=4.0) == 5.0  # no new measurement
    assert machine_peak_gflops("cpu", 1, "fp32", at_least=6.0) == 5.0  # measured 3.0: keep 5
    assert machine_peak_gflops("cpu", 1, "fp32", at_least=6.0) == 8.0  # measured 8.0
    assert machine_peak_gflops("cpu", 1, "fp32") == 8.0


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path))
    assert machine.cache_dir() == tmp_path
    monkeypatch.delenv("MBPROF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert machine.cache_dir() == tmp_path / "xdg" / "mbprof"


# --------------------------------------------------------------------------- the API


@pytest.mark.usefixtures("tiny_models")
def test_api_compare_with_latency_and_a_failing_configuration():
    s = mbprof.make_latency_settings(batch=2, threads=1, min_time_s=0.001, warmup=1)
    frame = mbprof.compare(models=["test_batch_one", "test_tiny"], resolutions=[32], latency=s)
    assert list(frame["model"]) == ["test_batch_one", "test_tiny"]
    failed, ok = frame.iloc[0], frame.iloc[1]
    assert "RuntimeError" in failed["error"] and math.isnan(failed["latency_ms"])
    assert failed["batch"] == 2 and failed["device"] == "cpu"  # the environment is kept
    assert failed["madds"] == ok["madds"] == tiny_madds(32)  # counted all the same
    assert not isinstance(ok["error"], str) and ok["latency_ms"] > 0 and ok["batch"] == 2
    assert ok["latency_ms_per_image"] == pytest.approx(ok["latency_ms"] / 2)
    assert ok["threads"] == 1 and ok["backend"] == "eager"


@pytest.mark.usefixtures("tiny_models")
def test_api_compare_counts_only_by_default():
    frame = mbprof.compare(models=["test_tiny"], resolutions=[32])
    assert "latency_ms" not in frame and frame.loc[0, "madds"] == tiny_madds(32)


def test_a_model_faster_than_the_reference_says_so(monkeypatch):
    monkeypatch.setattr(harness, "machine_peak_gflops", lambda *a, **k: 1e-9)
    t = time_model(Recorder(), (1, 3, 16, 16), settings(), madds=1000)
    assert t.machine_share_pct > 100
    assert any("ran faster" in note and "machine_peak.json" in note for note in t.notes)
