"""The executorch backend (XNNPACK) on tiny networks: behaviour, never timings. Lowering
costs seconds, so each program is lowered once for the module (``lowered`` fixtures) and
kept in a module-wide program cache that later lowerings read."""

from __future__ import annotations

import os
import statistics
from dataclasses import replace

import pytest
import torch
from torch import nn

pytest.importorskip("executorch")
# Every program is lowered (seconds to a minute each): the whole module is in the slow tier.
pytestmark = pytest.mark.slow

from mbprof.analysis.latency import executorch as lowering  # noqa: E402
from mbprof.analysis.latency import roofline  # noqa: E402
from mbprof.analysis.latency.executorch import (  # noqa: E402
    Fallback,
    Loaded,
    _events,
    layer_profile,
    lower,
    modules,
    native_quiet,
)
from mbprof.analysis.latency.harness import time_model  # noqa: E402
from mbprof.analysis.latency.machine import resolve_settings  # noqa: E402
from mbprof.api import build_sized  # noqa: E402
from mbprof.core.errors import MbprofError  # noqa: E402
from mbprof.core.settings import LatencySettings  # noqa: E402
from mbprof.models.calibration import calibrate  # noqa: E402
from tests.support.tiny_models import tiny_models  # noqa: E402, F401  (a fixture)

SIDE = 16
C, CLASSES = 32, 100  # enough weights for int8 to show in the file size
FAST = dict(min_time_s=0.001, warmup=1, threads=1, backend="executorch")


class Block(nn.Module):
    """An inverted residual in miniature: 1x1 expand, depthwise 3x3, 1x1 project, add."""

    def __init__(self, op: str = "") -> None:
        super().__init__()
        self.expand = nn.Sequential(
            nn.Conv2d(C, 3 * C, 1, bias=False), nn.BatchNorm2d(3 * C), nn.ReLU6()
        )
        self.dw = nn.Sequential(
            nn.Conv2d(3 * C, 3 * C, 3, padding=1, groups=3 * C, bias=False),
            nn.BatchNorm2d(3 * C),
            nn.ReLU6(),
        )
        self.project = nn.Sequential(nn.Conv2d(3 * C, C, 1, bias=False), nn.BatchNorm2d(C))
        self.op = op

    def forward(self, x):
        y = x + self.project(self.dw(self.expand(x)))
        if self.op == "cumsum":  # XNNPACK has no cumulative sum: a portable kernel
            y = torch.cumsum(y, dim=1)
        if self.op == "sort":  # lowers, but the pip runtime has no sort kernel
            y = torch.sort(y, dim=1).values
        return y


class Net(nn.Module):
    def __init__(self, op: str = "") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.features = nn.Sequential(nn.ReLU6(), Block(op))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(C, CLASSES)

    def forward(self, x):
        return self.fc(self.pool(self.features(self.stem(x))).flatten(1))


def net(op: str = "") -> nn.Module:
    torch.manual_seed(0)
    return calibrate(Net(op), (SIDE, SIDE))


def example() -> torch.Tensor:
    return torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """One program cache (and machine reference) for the module, never the user's."""
    saved = os.environ.get("MBPROF_CACHE_DIR")
    os.environ["MBPROF_CACHE_DIR"] = str(tmp_path_factory.mktemp("mbprof-cache"))
    yield
    if saved is None:
        os.environ.pop("MBPROF_CACHE_DIR")
    else:
        os.environ["MBPROF_CACHE_DIR"] = saved


@pytest.fixture(scope="module")
def lowered():
    model = net()
    return model, lower(model, example(), cache=True)


def test_the_program_computes_the_model(lowered):
    model, program = lowered
    x = example()
    with torch.inference_mode():
        expected = model(x)
    got = Loaded(program, threads=1)(x)
    assert got.shape == expected.shape == (1, CLASSES)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_a_whole_mobile_block_goes_to_xnnpack(lowered):
    _, program = lowered
    assert program.delegation.fallbacks == () and program.delegation.partitions == 1
    # at least the 5 convolutions, the addition, the mean and the linear layer
    assert program.delegation.delegated_ops >= 8
    assert "none ran on the portable kernels" in program.delegation.note()


def test_the_deployed_size_holds_the_fp32_weights(lowered):
    model, program = lowered
    weights = 4 * sum(p.numel() for p in model.parameters())  # fp32, before BN is folded
    bn = 4 * sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                 for p in m.parameters())  # fmt: skip
    assert weights - bn <= len(program.pte) <= weights + 100_000


def test_a_second_lowering_reads_the_cache(lowered, monkeypatch):
    model, program = lowered
    monkeypatch.setattr(lowering, "_LOWERED", {})  # as in a new process: the folder only
    again = lower(model, example(), cache=True)
    assert again.seconds is None and again.cached_s == pytest.approx(program.seconds)
    assert again.pte == program.pte and again.delegation == program.delegation
    changed = net()
    with torch.no_grad():
        changed.fc.bias[0] += 1.0  # another weight: another key, never the old program
    exported = torch.export.export(changed, (example(),))
    key = lowering.program_key(exported, (1, 3, SIDE, SIDE), "none")
    assert lowering.read_program(key) is None


def test_a_program_lowered_in_this_process_is_not_lowered_again(lowered, monkeypatch):
    model, program = lowered  # lowered by the fixture, in this process
    monkeypatch.setattr(lowering, "read_program", None)  # the cache folder is not read
    again = lower(model, example())
    assert again.seconds is None and again.cached_s == program.seconds
    assert again.pte == program.pte and again.partitions == program.partitions
    assert [sorted(p) for p in program.partitions] == [["add", "conv", "mean"]]
    exported = torch.export.export(model, (example(),))
    shape = (1, 3, SIDE, SIDE)  # int8 is another program: another key
    assert lowering.program_key(exported, shape, "int8") != lowering.program_key(
        exported, shape, "none"
    )


def test_time_model_times_the_program_with_its_figures(lowered):
    model, program = lowered
    settings = resolve_settings(LatencySettings(**FAST, cache_programs=True))
    t = time_model(model, (1, 3, SIDE, SIDE), settings, madds=1)
    assert t.environment.backend == "executorch" and t.environment.quantize == "none"
    from importlib.metadata import version

    assert t.environment.backend_version == version("executorch")
    assert t.deployed_bytes == len(program.pte)  # the same graph and weights
    assert (t.delegated_ops, t.portable_ops) == (program.delegation.delegated_ops, 0)
    assert program.seconds > 0 and t.compile_s is None  # read from the cache: not lowered
    assert any("came from mbprof's cache" in note for note in t.notes)
    assert t.fp32_latency_ms is None and t.int8_cosine is None


def test_the_thread_pool_gets_the_requested_count(lowered):
    _, program = lowered
    pool = modules().portable
    for threads in (1, min(2, os.cpu_count() or 1), 1):
        loaded = Loaded(program, threads=threads)
        assert pool._threadpool_get_thread_count() == threads  # what the verdict checks
        assert loaded(example()).shape == (1, CLASSES)


def test_int8_is_smaller_faster_and_close_to_fp32():
    model = net()
    settings = resolve_settings(LatencySettings(**FAST, quantize="int8", cache_programs=True))
    t = time_model(model, (1, 3, SIDE, SIDE), settings, madds=1)
    assert t.environment.quantize == "int8"
    assert t.deployed_bytes < t.fp32_deployed_bytes  # int8 weights
    assert t.fp32_latency_ms > 0 and t.int8_speedup == t.fp32_latency_ms / t.latency_ms
    assert t.int8_cosine > 0.9 and 0.0 <= t.int8_top1_agreement <= 1.0
    assert t.machine_peak_gflops is None  # int8 is not measured against an fp32 GEMM
    assert any("not an accuracy figure" in note for note in t.notes)


@pytest.fixture(scope="module")
def with_fallback():
    model = net("cumsum")
    return model, lower(model, example())


def test_an_operator_outside_xnnpack_is_named_with_its_module(with_fallback):
    model, program = with_fallback
    assert program.delegation.fallbacks == (Fallback("aten.cumsum.default", "features.1"),)
    assert program.delegation.partitions == 2  # the fallback splits the XNNPACK graph
    note = program.delegation.note()
    assert "aten.cumsum.default x1 (features.1)" in note and "slow" in note
    with torch.inference_mode():
        expected = model(example())
    got = Loaded(program, threads=1)(example())
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_an_operator_without_a_kernel_is_refused_before_loading(with_fallback):
    _, program = with_fallback
    # the program as the runtime would get it, needing a kernel this build does not have
    needs_sort = replace(program, operators=(*program.operators, "aten::sort.values"))
    with pytest.raises(RuntimeError, match=r"no kernel for aten::sort\.values .*features\.1"):
        Loaded(needs_sort, threads=1)


def test_a_real_program_that_sorts_has_no_kernel_here():
    program = lower(net("sort"), example())
    assert "aten::sort.values" in program.operators
    with pytest.raises(RuntimeError, match=r"no kernel for aten::sort\.values"):
        Loaded(program, threads=1)


def test_a_model_torch_export_cannot_capture_is_one_clear_error():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x.relu() if x.sum() > 0 else -x

    settings = resolve_settings(LatencySettings(**FAST))
    with pytest.raises(RuntimeError, match="torch.export could not capture the model") as info:
        time_model(DataDependent(), (1, 3, SIDE, SIDE), settings, madds=1)
    assert "\n" not in str(info.value)


def _conv_paths(model: nn.Module) -> list[str]:
    """Every conv and linear layer of ``model``, named by torch (independently)."""
    return sorted(n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_layer_profile_maps_every_convolution_to_its_module(lowered):
    model, program = lowered
    settings = LatencySettings(threads=1)
    profile = layer_profile(model, example(), settings, runs=3, lowered=program)
    convs = [r for r in profile.rows if r.type in ("Conv2d", "Linear")]
    assert sorted(r.path for r in convs) == _conv_paths(model)
    assert all(r.ops == 1 and len(r.times_us) == 3 for r in convs)  # each operator once a run
    assert all(r.mapped for r in profile.rows) and statistics.median(profile.walls_ms) > 0


def test_layer_profile_names_the_portable_operator(with_fallback):
    model, program = with_fallback
    settings = LatencySettings(threads=1)
    profile = layer_profile(model, example(), settings, runs=3, lowered=program)
    rows = {r.path: r for r in profile.rows}
    assert rows["features.1"].ops == 2  # the addition (XNNPACK) and the portable cumsum
    assert sorted(r.path for r in profile.rows if r.type in ("Conv2d", "Linear")) == _conv_paths(
        model
    )


def test_native_logs_are_kept_off_the_terminal(capfd):
    with native_quiet() as captured:
        os.write(2, b"[method.cpp:1] a line from C++\n")
    assert "a line from C++" in "".join(captured)
    assert "a line from C++" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(channels_last=True), "ExecuTorch chooses its own memory layout"),
        (dict(dtype="fp16"), "the executorch backend runs fp32 models only"),
        (dict(device="cuda"), "use device cpu"),
    ],
)
def test_settings_executorch_cannot_run_are_refused(kwargs, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(MbprofError, match=message):
        resolve_settings(LatencySettings(backend="executorch", **kwargs))


def test_missing_executorch_extra_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "executorch", None)
    with pytest.raises(MbprofError, match=r'pip install "mbprof\[executorch\]"'):
        resolve_settings(LatencySettings(backend="executorch"))


def test_bench_layers_on_executorch_gives_each_convolution_its_row(lowered):
    from mbprof.analysis.counting import count

    model, program = lowered
    settings = resolve_settings(LatencySettings(**FAST))
    shape = (1, 3, SIDE, SIDE)
    profile = roofline.profile_layers(model, shape, settings, 1.0, count(model, shape))
    rows = {row.path: row for row in profile.rows}
    assert set(_conv_paths(model)) <= set(rows)  # each conv and linear layer once
    assert rows["features.1.dw.0"].kind == "depthwise conv"
    assert rows["fc"].madds == CLASSES * C and rows["stem.0"].bytes_moved > 0
    assert all(row.time_ms >= 0 for row in profile.rows)
    assert any("ETDump" in note for note in profile.notes)


def test_a_build_without_the_event_tracer_says_so_in_one_line(tmp_path):
    class NoTracer:  # a program loaded by a runtime built without ETDump
        class _program:  # noqa: N801 - the attribute ExecuTorch's Program has
            @staticmethod
            def has_etdump() -> bool:
                return False

    with pytest.raises(MbprofError, match="no event tracer") as info:
        _events(NoTracer(), str(tmp_path))
    assert "\n" not in str(info.value) and info.value.field == "layers"


@pytest.mark.usefixtures("tiny_models")
def test_interleaved_timing_times_int8_against_its_fp32_program():
    import mbprof
    from mbprof.api.sweep import interleaved_latency

    spec = mbprof.make_spec("test_tiny", resolution=32)
    latency = mbprof.make_latency_settings(
        backend="executorch", quantize="int8", threads=1, min_time_s=0.001, warmup=1
    )
    (columns,) = interleaved_latency([(spec, build_sized(spec).model, 1)], latency, rounds=2)
    assert "error" not in columns, columns.get("error")
    assert columns["quantize"] == "int8" and columns["backend"] == "executorch"
    assert columns["fp32_latency_ms"] > 0 and columns["deployed_bytes"] > 0
    assert columns["latency_verdict"] in ("stable", "unstable") and columns["rounds"] == 2
