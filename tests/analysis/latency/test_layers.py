"""Per-layer time: rows mapped to module paths, their figures by hand, rows and the
"outside" row summing to the profiled pass, unmapped ops kept, ONNX Runtime's nodes traced
back to modules. No timing is asserted (only that times are times)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mbprof.analysis.counting import count
from mbprof.analysis.latency import roofline
from mbprof.analysis.latency.machine import resolve_settings
from mbprof.analysis.latency.onnx_runtime import (
    ExportedNode,
    Graph,
    folded_norms,
    map_node,
    node_bytes,
)
from mbprof.analysis.latency.runtimes import OUTSIDE, profile_eager
from mbprof.core.errors import MbprofError
from mbprof.core.settings import LatencySettings

SIDE = 16
COMPUTE, BANDWIDTH = 50.0, 10.0  # fixed ceilings: the tests do not measure the machine


class Net(nn.Module):
    """conv 3->4 3x3 (no bias) -> batch norm -> ReLU -> mean (the model's own op) -> fc 4->3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.act(self.bn(self.conv(x))).mean((2, 3)))


@pytest.fixture(autouse=True)
def _fixed_ceilings(monkeypatch):
    monkeypatch.setattr(roofline, "machine_peak_gflops", lambda *a, **k: COMPUTE)
    monkeypatch.setattr(roofline, "machine_bandwidth_gbs", lambda *a, **k: BANDWIDTH)


def profiled(model: nn.Module, backend: str = "eager"):
    shape = (1, 3, SIDE, SIDE)
    settings = resolve_settings(
        LatencySettings(device="cpu", threads=1, min_time_s=0.001, warmup=1, backend=backend)
    )
    return roofline.profile_layers(model.eval(), shape, settings, 1.0, count(model, shape))


def test_eager_rows_are_the_modules_with_their_figures_by_hand():
    profile = profiled(Net())
    rows = {r.path: r for r in profile.rows}
    assert set(rows) == {"conv", "bn", "act", "fc", "(model)", OUTSIDE}
    assert profile.rows[-1].path == OUTSIDE
    conv, fc = rows["conv"], rows["fc"]
    # conv: 4 x 3 x 9 multiply-accumulates per output pixel; fc: 4 x 3
    assert conv.madds == 4 * 3 * 9 * SIDE * SIDE and fc.madds == 12
    # bytes: input 3 x 16 x 16, weight 4 x 3 x 3 x 3, output 4 x 16 x 16 float32
    assert conv.bytes_moved == 4 * (3 * SIDE * SIDE + 4 * 3 * 9 + 4 * SIDE * SIDE)
    assert rows["bn"].bytes_moved == 4 * (2 * 4 * SIDE * SIDE + 4 * 4)  # + weight, bias, stats
    assert fc.bytes_moved == 4 * (4 + 12 + 3 + 3)
    assert (conv.kernel, conv.stride, conv.groups, conv.out_shape) == (
        (3, 3),
        (1, 1),
        1,
        (1, 4, SIDE, SIDE),
    )
    assert conv.kind == "conv" and fc.kind == "fully connected" and rows["bn"].kind == "other"
    assert conv.intensity == pytest.approx(2 * conv.madds / conv.bytes_moved)
    ridge = COMPUTE / BANDWIDTH
    for row in (conv, fc):
        assert row.gflops == pytest.approx(2 * row.madds / (row.time_ms * 1e-3) / 1e9)
        assert row.bound == ("memory" if row.intensity < ridge else "compute")
        roof = min(COMPUTE, row.intensity * BANDWIDTH)
        assert row.roof_pct == pytest.approx(100 * row.gflops / roof)
    assert rows["act"].intensity is None and rows["act"].bound == "memory"


def test_rows_and_outside_sum_to_the_profiled_pass():
    profile = profiled(Net())
    assert all(r.time_ms >= 0 for r in profile.rows) and profile.passes == roofline.MIN_PASSES
    assert sum(r.time_ms for r in profile.rows) == pytest.approx(profile.profiled_ms)
    assert sum(r.time_share_pct for r in profile.rows) == pytest.approx(100)
    assert sum(r.madds_share_pct for r in profile.rows) == pytest.approx(100)
    assert any("The profiler's own overhead" in note for note in profile.notes)
    assert profile.overhead_pct == pytest.approx(100 * (profile.profiled_ms - 1.0) / 1.0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_a_model_that_cannot_be_mapped_keeps_its_ops_as_rows():
    scripted = torch.jit.script(Net().eval())
    raw = profile_eager(scripted, torch.randn(1, 3, SIDE, SIDE), passes=3)
    names = {r.path for r in raw.rows}
    assert {"aten::conv2d #1", "aten::linear #1"} <= names
    assert not any(r.mapped for r in raw.rows)
    assert all(len(r.times_us) == 3 for r in raw.rows)


def test_a_layer_timed_within_the_resolution_leaves_the_ceiling_as_it_is():
    from mbprof.analysis.latency.roofline import finish
    from mbprof.analysis.latency.runtimes import RawLayer, RawProfile

    model = Net()
    counted = count(model, (1, 3, SIDE, SIDE)).layers
    conv_madds = 4 * 3 * 9 * SIDE * SIDE  # by hand: 27,648
    raw = RawProfile([RawLayer("conv", "Conv2d", [1.0])], walls_ms=[0.01])  # 1 us
    fast = 2 * conv_madds / 1e-6 / 1e9  # 55.3 GFLOP/s > COMPUTE
    settings = LatencySettings(backend="executorch", batch=1, dtype="fp32")
    raised = finish(raw, counted, settings, 0.01, compute_gflops=COMPUTE, bandwidth_gbs=BANDWIDTH)
    assert raised.compute_gflops == pytest.approx(fast)
    coarse = RawProfile(raw.rows, raw.walls_ms, resolution_ms=0.02)  # XNNPACK's 1 us ticks
    kept = finish(coarse, counted, settings, 0.01, compute_gflops=COMPUTE, bandwidth_gbs=BANDWIDTH)
    assert kept.compute_gflops == COMPUTE


def test_compile_cannot_be_profiled_per_layer():
    with pytest.raises(MbprofError, match="backend compile cannot be profiled per layer") as info:
        roofline.check_layer_backend("compile")
    assert "eager, onnxruntime or executorch" in str(info.value) and info.value.field == "backend"


# --------------------------------------------------------------------------- ONNX Runtime


def test_onnx_nodes_are_traced_back_to_modules():
    graph = Graph(
        [
            # the exporter folded batch norm features.0.1 into its convolution
            ExportedNode("node_Conv_1", "Conv", "features.0.1", ("input", "w"), ("bn_out",)),
            ExportedNode("n4", "Clip", "features.0.2", ("bn_out",), ("hardtanh",)),
            ExportedNode("node_Gemm_2", "Gemm", "classifier.1", ("hardtanh", "fc.w"), ("output",)),
            ExportedNode("node_mean", "ReduceMean", "", ("x",), ("mean",)),
            ExportedNode("node_old", "Relu", None, ("x",), ("y",)),
        ]
    )
    optimised = {
        "hardtanh_nchwc": ExportedNode("hardtanh_nchwc", "Conv", None, ("input",), ("reorder_token_0",)),
        "ReorderOutput_token_3": ExportedNode("ReorderOutput_token_3", "ReorderOutput", None, ("reorder_token_0",), ("bn_out",)),
    }  # fmt: skip
    folded = {"features.0.1": "features.0.0"}

    def mapped(name: str, op: str):
        return map_node(name, op, graph, optimised, folded)

    # conv + batch norm + activation fused, named after the activation's tensor
    assert mapped("hardtanh_nchwc", "Conv") == "features.0.0"
    assert mapped("ReorderOutput_token_3", "ReorderOutput") == "features.0.0"  # its tensor
    assert mapped("node_Gemm_2", "Gemm") == "classifier.1"  # unchanged by ONNX Runtime
    assert mapped("node_mean", "ReduceMean") == ""  # the model's own op
    assert mapped("node_old", "Relu") is None  # no module scope recorded
    assert mapped("nowhere_nchwc", "Conv") is None


def test_batch_norms_folded_into_the_convolution_before_them():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1),
        nn.BatchNorm2d(2),
    )  # fmt: skip
    assert folded_norms(model) == {"1": "0", "5": "4"}  # "3" follows an activation


def test_onnx_node_bytes_add_the_weights_the_profile_leaves_out():
    node = ExportedNode("g", "Gemm", None, ("x", "w", "b"), ("y",))
    args = {"activation_size": "5120", "output_size": "4000", "parameter_size": "0"}
    assert node_bytes(args, node, {"w": 5_120_000, "b": 4000}) == 5120 + 4000 + 5_124_000
    assert node_bytes(args, None, {}) == 9120


@pytest.mark.slow  # an ONNX export (seconds)
def test_onnxruntime_rows_are_mapped_and_sum_to_the_profiled_pass():
    profile = profiled(Net(), backend="onnxruntime")
    rows = {r.path: r for r in profile.rows}
    assert all(r.mapped for r in profile.rows)
    assert "conv" in rows and rows["conv"].madds == 4 * 3 * 9 * SIDE * SIDE
    assert "fc" in rows and rows["fc"].madds == 12
    assert rows["conv"].out_shape == (1, 4, SIDE, SIDE)
    assert sum(r.time_ms for r in profile.rows) == pytest.approx(profile.profiled_ms)
    assert math.isclose(sum(r.time_share_pct for r in profile.rows), 100)
    assert any("ONNX Runtime's own profile" in note for note in profile.notes)
