"""The cheap paths of issue 13's speed work give what the dearer ones give: counts that take
their output sizes and params_used from the memory analysis' meta trace, a memory report
from a trace handed in, the trace's own convolution shapes (against torch's meta kernel),
mbprof's own models built once with their parameters counted as registered, and the
garbage collector back as it was."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
import torch
from torch import nn

import mbprof
from mbprof.analysis import footprint
from mbprof.analysis.counting import count
from mbprof.analysis.memory import analyze
from mbprof.analysis.memory.ops import shortcut
from mbprof.analysis.memory.trace import trace
from mbprof.api.building import build_sized
from mbprof.core.errors import MbprofError
from mbprof.models import create_model
from tests.support import real_world_models as zoo
from tests.support.flop_reference import single_thread  # noqa: F401  (fixture)

BUILTIN = [
    ("mobilenet_v1", 64),
    ("mobilenet_v2", 96),
    ("mobilenet_v3_small", 64),
    ("mobilenet_v3_large", 64),
    ("shufflenet_v1_g3", 64),
]
# users' models that run on the meta device: functional reads, attention, an unused head
OWN = [zoo.FunctionalUse, zoo.MultiHeadAttention, zoo.AuxiliaryHead, zoo.LiteralWidths]


def _models():
    for name, side in BUILTIN:
        yield pytest.param(lambda name=name: create_model(name), side, id=name)
    for build in OWN:
        yield pytest.param(build, 32, id=build.__name__)


@pytest.mark.parametrize(("build", "side"), list(_models()))
def test_counts_from_the_meta_trace_equal_those_recorded_under_fvcore(build, side):
    # Two mechanisms: a recorder and hooks in fvcore's jit trace, or the dispatcher-level
    # trace on the meta device. Every row, total, params_used and note must agree.
    model = build().eval()
    shape = (1, 3, side, side)
    recorded = count(model, shape)
    shared = count(model, shape, trace(model, shape))
    assert shared == recorded
    assert any(row.out_hw for row in shared.layers)


def test_the_unused_head_is_apart_on_both_paths():
    model = zoo.AuxiliaryHead().eval()
    shape = (1, 3, 32, 32)
    shared = count(model, shape, trace(model, shape))
    stem_and_fc = (3 * 9 * 16 + 16) + (16 * 10 + 10)  # what eval mode reads, by hand
    assert (shared.params_used, shared.params) == (
        stem_and_fc,
        sum(p.numel() for p in model.parameters()),
    )
    assert "(in aux, aux_fc)" in shared.notes[0]


def test_a_trace_handed_in_gives_the_same_memory_report_and_is_left_as_it_was():
    model = create_model("mobilenet_v2", width=0.5).eval()
    shape = (1, 3, 96, 96)
    graph = trace(model, shape)
    alone = analyze(model, shape).report
    assert analyze(model, shape, graph=graph).report == alone
    assert analyze(model, shape, graph=graph).report == alone  # the graph was only read


CONVS = [
    # (input shape, weight shape, stride, padding, dilation, groups, bias)
    ((1, 3, 17, 20), (8, 3, 3, 3), [2, 2], [1, 1], [1, 1], 1, True),
    ((2, 8, 9, 9), (8, 1, 5, 5), [1, 1], [2, 2], [1, 1], 8, False),
    ((1, 4, 16, 16), (6, 2, 3, 1), [1, 2], [0, 3], [2, 1], 2, True),
    ((1, 4, 11), (5, 4, 4), [3], [1], [2], 1, False),
    ((1, 2, 5, 6, 7), (3, 2, 1, 2, 3), [1, 1, 2], [0, 1, 1], [1, 1, 1], 1, True),
]


@pytest.mark.parametrize("case", CONVS)
def test_the_convolution_shortcut_matches_torch_s_meta_kernel(case):
    x_shape, w_shape, stride, padding, dilation, groups, bias = case
    x = torch.empty(x_shape, device="meta")
    weight = torch.empty(w_shape, device="meta")
    b = torch.empty(w_shape[0], device="meta") if bias else None
    args = (x, weight, b, stride, padding, dilation, False, [0] * len(stride), groups)
    op = torch.ops.aten.convolution.default
    mine, torch_s = shortcut(op, args, {}), op(*args)
    assert mine is not None
    assert (mine.shape, mine.dtype, mine.is_contiguous()) == (
        torch_s.shape,
        torch_s.dtype,
        torch_s.is_contiguous(),
    )


def test_other_convolutions_are_left_to_torch():
    x = torch.empty(1, 4, 8, 8, device="meta").to(memory_format=torch.channels_last)
    weight = torch.empty(4, 4, 3, 3, device="meta")
    op = torch.ops.aten.convolution.default
    common = ([1, 1], [0, 0], [1, 1])
    assert shortcut(op, (x, weight, None, *common, False, [0, 0], 1), {}) is None
    plain = torch.empty(1, 4, 8, 8, device="meta")
    assert shortcut(op, (plain, weight, None, *common, True, [0, 0], 1), {}) is None  # transposed
    small = torch.empty(1, 4, 2, 2, device="meta")
    assert shortcut(op, (small, weight, None, *common, False, [0, 0], 1), {}) is None  # too small


def _meta(*shape):
    return torch.empty(shape, device="meta")


OTHER_OPS = [
    # (op, arguments): global pooling, pooling windows, joins, a broadcast scale
    (torch.ops.aten.mean.dim, (_meta(2, 8, 7, 5), [-1, -2], True)),
    (torch.ops.aten.mean.dim, (_meta(2, 8, 7, 5), [1])),
    (torch.ops.aten.mean.dim, (_meta(2, 8, 7), [0, 2], False)),
    (torch.ops.aten.max_pool2d_with_indices.default, (_meta(1, 3, 17, 20), [3, 3], [2, 2], [1, 1])),
    (
        torch.ops.aten.max_pool2d_with_indices.default,
        (_meta(1, 3, 17, 20), [3], [2], [1], [2], True),
    ),
    (torch.ops.aten.max_pool2d_with_indices.default, (_meta(2, 4, 9, 9), [2, 3])),
    (torch.ops.aten.avg_pool2d.default, (_meta(1, 3, 17, 20), [3, 3], [2, 2], [1, 1])),
    (torch.ops.aten.avg_pool2d.default, (_meta(1, 3, 10, 11), [3], [2], [1], True)),
    (torch.ops.aten.avg_pool2d.default, (_meta(1, 3, 7, 7), [7, 7])),
    (torch.ops.aten.cat.default, ([_meta(1, 2, 5, 5), _meta(1, 6, 5, 5)], 1)),
    (torch.ops.aten.cat.default, ([_meta(3, 4), _meta(3, 4), _meta(3, 1)], -1)),
    (torch.ops.aten.cat.default, ([_meta(2, 3)],)),
    (torch.ops.aten.mul.Tensor, (_meta(2, 8, 5, 5), _meta(2, 8, 1, 1))),
    (torch.ops.aten.add.Tensor, (_meta(2, 8, 5, 5), _meta(5))),
]


@pytest.mark.parametrize(("op", "args"), OTHER_OPS)
def test_the_other_shortcuts_match_torch_s_meta_kernels(op, args):
    mine, torch_s = shortcut(op, args, {}), op(*args)
    assert mine is not None
    for a, b in zip(*[m if isinstance(m, tuple) else (m,) for m in (mine, torch_s)], strict=True):
        assert (a.shape, a.dtype, a.is_contiguous()) == (b.shape, b.dtype, b.is_contiguous())


@pytest.mark.parametrize(
    ("op", "args"),
    [
        (torch.ops.aten.mean.dim, (_meta(2, 8), [0, -2])),  # one dim twice
        (torch.ops.aten.mean.dim, (_meta(2, 8), [2])),  # no such dim
        (torch.ops.aten.cat.default, ([_meta(1, 2, 5, 5), _meta(1, 2, 4, 5)], 1)),
        (torch.ops.aten.cat.default, ([_meta(2, 3), _meta(2, 3).half()], 0)),
        (torch.ops.aten.mul.Tensor, (_meta(2, 8, 1, 1), _meta(2, 8, 5, 5))),  # first broadcast
        (torch.ops.aten.mul.Tensor, (_meta(2, 8, 5, 5), _meta(3, 1, 1))),
        (torch.ops.aten.max_pool2d_with_indices.default, (_meta(1, 3, 2, 2), [3, 3])),
        (torch.ops.aten.max_pool2d_with_indices.default, (_meta(1, 3, 9, 9), [3], [1], [2])),
        (torch.ops.aten.avg_pool2d.default, (_meta(1, 3, 9, 9), [3], [0])),
    ],
)
def test_what_the_shortcuts_cannot_tell_is_left_to_torch(op, args):
    assert shortcut(op, args, {}) is None


@pytest.mark.slow  # a whole process (the shortcuts themselves are checked above)
def test_mbprof_s_models_trace_without_torch_s_python_meta_kernels():
    # Their first call imports torch._dynamo (seconds of every command's start-up).
    code = (
        "import sys; from mbprof.analysis.memory.trace import trace; "
        "from mbprof.models import create_model\n"
        "for name in ('mobilenet_v1', 'mobilenet_v2', 'mobilenet_v3_small', 'shufflenet_v1_g3'):\n"
        "    trace(create_model(name, width=0.25 if 'v1_g' not in name else 1.0), (1, 3, 64, 64))\n"
        "print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_a_builtin_is_built_once_with_its_parameters_counted_as_registered(monkeypatch):
    def no_meta_build(*_args, **_kwargs):
        raise AssertionError("mbprof's own model was sized by a second build")

    monkeypatch.setattr(footprint, "size_parameters", no_meta_build)
    spec = mbprof.make_spec("mobilenet_v2", 0.5, resolution=96)
    built = build_sized(spec, trace=True)
    assert built.notes == () and built.graph is not None
    assert {p.device.type for p in built.model.parameters()} == {"cpu"}
    expected = create_model("mobilenet_v2", width=0.5)
    assert sum(p.numel() for p in built.model.parameters()) == sum(
        p.numel() for p in expected.parameters()
    )


def test_a_builtin_past_half_the_free_memory_is_sized_on_meta_then_built(monkeypatch):
    model = create_model("mobilenet_v2", width=0.35, num_classes=10)
    state = sum(t.numel() for t in [*model.parameters(), *model.buffers()]) * 4
    monkeypatch.setattr(footprint, "available_memory_bytes", lambda: state * 3 // 2)
    calls = []
    size_parameters = footprint.size_parameters

    def counted(build, budget):
        calls.append(budget)
        return size_parameters(build, budget)

    monkeypatch.setattr(footprint, "size_parameters", counted)
    spec = mbprof.make_spec("mobilenet_v2", 0.35, resolution=32, num_classes=10)
    built = build_sized(spec)
    assert calls == [state * 3 // 2]  # the bounded build stopped at half: sized on meta
    assert sum(p.numel() for p in built.model.parameters()) == sum(
        p.numel() for p in model.parameters()
    )


def test_build_counted_stops_past_its_budget_and_on_a_tensor_too_large_to_allocate():
    assert footprint.build_counted(lambda: nn.Linear(100, 100), 100 * 100 * 4) is None
    assert isinstance(footprint.build_counted(lambda: nn.Linear(10, 10), 10**6), nn.Linear)
    # 4 TB: refused by the allocator, or (lazily mapped) stopped when it is registered
    assert footprint.build_counted(lambda: nn.Linear(10**6, 10**6), 10**9) is None


def test_activations_from_the_trace_by_hand():
    conv = nn.Conv2d(3, 8, 3, stride=2).eval()
    graph = trace(conv, (1, 3, 16, 16))
    # input 3 x 16 x 16 and output 8 x 7 x 7, float32; the weight and bias are not activations
    assert footprint.graph_activation_bytes(graph) == footprint.SAFETY * (3 * 256 + 8 * 49) * 4


def test_the_collector_is_back_as_it_was_after_an_analysis_and_a_failure():
    model = create_model("mobilenet_v2", width=0.35).eval()
    count(model, (1, 3, 32, 32))
    assert gc.isenabled()
    with pytest.raises(MbprofError, match="cannot trace"):
        trace(zoo.BranchesOnValues().eval(), (1, 3, 32, 32))
    assert gc.isenabled()
    gc.disable()
    try:
        count(model, (1, 3, 32, 32))
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()
