"""The dispatch engine against fvcore, row by row: fvcore is the independent counter here
(its own JIT trace and handles), the dispatch engine re-implements its rules on the aten
ops of the meta-device trace. Every field of every layer row must be identical."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mbprof.analysis.counting import count
from mbprof.core.errors import MbprofError
from mbprof.models import create_model, list_models


def figures(report):
    """What both engines must give alike: every row, the totals, params_used and fvcore's
    other figures by op (the unsupported ops are named by each engine's own op names)."""
    return (
        report.layers,
        report.madds,
        report.params,
        report.other_flops,
        dict(report.other_flops_by_op),
        report.params_used,
        report.attention_madds,
    )


def assert_engines_agree(model: nn.Module, shape: tuple[int, ...]) -> None:
    by_fvcore = count(model, shape)
    by_dispatch = count(model, shape, engine="dispatch")
    assert (by_fvcore.engine, by_dispatch.engine) == ("fvcore", "dispatch")
    for ours, theirs in zip(by_dispatch.layers, by_fvcore.layers, strict=False):
        assert ours == theirs  # the first row that differs, named
    assert figures(by_dispatch) == figures(by_fvcore)
    assert by_dispatch.uncounted_ops  # still listed, with how often each ran


def _built(name: str, width: float) -> nn.Module | None:
    torch.manual_seed(0)
    try:
        return create_model(name, width=width)
    except MbprofError:  # a width the model cannot be built at (ShuffleNet's groups)
        return None


FAST = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


@pytest.mark.parametrize("name", [*FAST, "shufflenet_v1_g3"])
def test_engines_agree_on_built_in_models(name):
    assert_engines_agree(_built(name, 0.5), (1, 3, 32, 48))


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("width", [0.35, 1.0, 1.4])
@pytest.mark.parametrize("side", [32, 64])
def test_engines_agree_on_every_built_in_model(name, width, side):
    model = _built(name, width)
    if model is None:
        pytest.skip(f"{name} has no width {width}")
    assert_engines_agree(model, (1, 3, side, side))


class Everything(nn.Module):
    """Every default handle of fvcore, the ways a model reaches them."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(4)
        self.bn_plain = nn.BatchNorm2d(4, affine=False)
        self.bn_batch_stats = nn.BatchNorm2d(4, track_running_stats=False)
        self.gn = nn.GroupNorm(2, 4)
        self.gn_plain = nn.GroupNorm(2, 4, affine=False)
        self.ln = nn.LayerNorm(8)
        self.ln_plain = nn.LayerNorm(8, elementwise_affine=False)
        self.inorm = nn.InstanceNorm2d(4)
        self.inorm_affine = nn.InstanceNorm2d(4, affine=True)
        self.inorm_stats = nn.InstanceNorm2d(4, track_running_stats=True)
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.act = nn.ReLU()
        self.same_act = self.act  # one module, two names: fvcore counts it by the first
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool2 = nn.AdaptiveAvgPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.fc = nn.Linear(8, 3)
        self.fc_plain = nn.Linear(64, 3, bias=False)
        self.mha = nn.MultiheadAttention(4, 2, batch_first=True)
        self.deconv = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)

    def forward(self, x):
        for norm in (self.bn, self.bn_plain, self.bn_batch_stats, self.gn, self.gn_plain):
            x = norm(x)
        for norm in (self.ln, self.ln_plain, self.inorm, self.inorm_affine, self.inorm_stats):
            x = norm(x)
        x = self.same_act(self.conv(x))[:, :4]
        flat = x.flatten(2)
        seq = flat.transpose(1, 2)
        heads = x.reshape(x.shape[0], 2, 8, 16)
        return (
            self.pool(x),
            self.pool2(x),
            x.mean((2, 3)),  # a mean, not adaptive pooling: fvcore has no handle for it
            F.adaptive_avg_pool2d(x, 1),
            F.interpolate(x, scale_factor=2),
            self.up(x),
            self.fc(x),
            self.fc_plain(flat),
            flat @ seq,
            torch.einsum("bcl,bdl->bcd", flat, flat),
            self.mha(seq, seq, seq)[0],
            self.mha(seq, seq, seq, need_weights=False)[0],  # fused attention
            F.scaled_dot_product_attention(heads, heads, heads),
            F.grid_sample(x, torch.zeros(x.shape[0], 4, 4, 2), align_corners=False),
            self.deconv(x),
        )


@pytest.mark.parametrize("batch", [1, 2])
def test_engines_agree_on_every_handle(batch):
    torch.manual_seed(0)
    model = Everything()
    assert_engines_agree(model, (batch, 4, 8, 8))
    ops = count(model, (batch, 4, 8, 8), engine="dispatch").other_flops_by_op
    assert set(ops) == {
        "batch_norm",
        "group_norm",
        "layer_norm",
        "instance_norm",
        "adaptive_avg_pool2d",
        "upsample_nearest2d",
        "upsample_bilinear2d",
        "grid_sampler",
    }


class WindowAttention(nn.Module):
    """MaxViT's attention pattern: einsum over (batch, windows, heads, tokens, dim)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(13, 13, bias=False)

    def forward(self, x):  # x: (1, 3 windows, 7 heads, 11 tokens, 13 dim)
        scores = torch.einsum("bghid,bghjd->bghij", self.proj(x), x)
        return torch.einsum("bghij,bghjd->bghid", scores.softmax(-1), x)


def test_einsum_is_counted_exactly_by_both_engines():
    """fvcore's own einsum handle reads numpy's count rounded to four digits (33,035 for
    each product here); both engines give the exact figure, row by row."""
    torch.manual_seed(0)
    model = WindowAttention()
    assert_engines_agree(model, (1, 3, 7, 11, 13))
    rows = {row.path: row.madds for row in count(model, (1, 3, 7, 11, 13)).layers}
    # proj: 3 x 7 x 11 tokens x 13 x 13 = 39,039; each einsum 3 x 7 x 11 x 11 x 13 = 33,033
    assert rows == {"proj": 39_039, "(model)": 2 * 33_033}


class Attention(nn.Module):
    """A ViT block's attention: 10 tokens of 8 channels, 2 heads of 4, fused attention."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24, bias=False)
        self.proj = nn.Linear(8, 8, bias=False)

    def forward(self, x):  # x: (1, 10, 8)
        q, k, v = self.qkv(x).reshape(1, 10, 3, 2, 4).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(1, 10, 8))


@pytest.mark.parametrize("engine", ["fvcore", "dispatch"])
def test_fused_attention_is_counted_and_said_apart(engine):
    """The papers count attention's matrix products; fvcore's own handles (and so timm's
    published GMACs) skip fused attention: mbprof counts it and says how much."""
    from fvcore.nn import FlopCountAnalysis

    torch.manual_seed(0)
    model = Attention()
    found = count(model, (1, 10, 8), engine=engine)
    # qkv 10 x 8 x 24 = 1,920; proj 10 x 8 x 8 = 640; attention 2 heads x 10 x 10 x (4 + 4)
    assert {row.path: row.madds for row in found.layers} == {
        "qkv": 1_920,
        "proj": 640,
        "(model)": 1_600,
    }
    assert (found.madds, found.attention_madds) == (4_160, 1_600)
    assert any("1,600 of the 4,160 MAdds" in note for note in found.notes)
    bare = FlopCountAnalysis(model, torch.zeros(1, 10, 8)).unsupported_ops_warnings(False)
    assert bare.total() == 4_160 - 1_600  # fvcore by itself
    assert not count(WindowAttention(), (1, 3, 7, 11, 13), engine=engine).attention_madds


def refusing_tracer(*_args, **_kwargs):
    raise RuntimeError("the tracer is gone")


def test_counts_when_the_tracer_raises(monkeypatch):
    import fvcore.nn.jit_analysis

    monkeypatch.setattr(fvcore.nn.jit_analysis, "_get_trace_graph", refusing_tracer)
    monkeypatch.setattr(torch.jit, "trace", refusing_tracer)
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", width=0.5)
    found = count(model, (1, 3, 64, 64))
    assert found.engine == "dispatch"
    assert any("the tracer is gone" in note for note in found.notes)
    # 0.5@64: the sum of the hand formula over its layers (test_counting's), and no fvcore
    assert found.madds == sum(
        r.out_hw[0]
        * r.out_hw[1]
        * r.out_channels
        * r.in_channels
        // r.groups
        * r.kernel[0]
        * r.kernel[1]
        if r.type == "Conv2d"
        else r.in_channels * r.out_channels
        for r in found.layers
        if r.madds
    )


class ValueBranch(nn.Module):
    """A forward pass that reads a tensor's value: it cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) if x.sum().item() >= 0 else x


def test_neither_engine_can_count(monkeypatch):
    import fvcore.nn.jit_analysis

    with pytest.raises(MbprofError, match="meta device"):
        count(ValueBranch(), (1, 4), engine="dispatch")
    assert count(ValueBranch(), (1, 4)).madds == 8  # fvcore's engine: 4 x 2
    monkeypatch.setattr(fvcore.nn.jit_analysis, "_get_trace_graph", refusing_tracer)
    with pytest.raises(RuntimeError, match="the tracer is gone"):  # fvcore's reason, as before
        count(ValueBranch(), (1, 4))


def test_counts_without_fvcore_importable(monkeypatch):
    """A torch without the JIT tracer: fvcore's import fails (it imports the tracer)."""
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)
    found = count(create_model("mobilenet_v1", width=0.25), (1, 3, 32, 32))
    assert found.engine == "dispatch" and found.notes
    assert (
        found.madds
        == count(create_model("mobilenet_v1", width=0.25), (1, 3, 32, 32), engine="dispatch").madds
    )


def test_profile_prints_the_published_madds_without_the_tracer(monkeypatch, run):
    import fvcore.nn.jit_analysis

    monkeypatch.setattr(fvcore.nn.jit_analysis, "_get_trace_graph", refusing_tracer)
    monkeypatch.setattr(torch.jit, "trace", refusing_tracer)
    result = run("profile", "mobilenet_v2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "300774272" in result.stdout.replace(",", "")  # torchvision's count
    assert "counted by the dispatch engine" in result.stdout


def test_engine_is_recorded_and_checked(run):
    from mbprof.api import compare

    frame = compare(
        "mobilenet_v2", 0.35, resolutions=96, with_memory=False, accuracy=False, engine="dispatch"
    )
    assert list(frame["engine"]) == ["dispatch"]
    with pytest.raises(MbprofError, match="engine"):
        compare("mobilenet_v2", 0.35, resolutions=96, engine="jit")
    shown = run(
        "compare",
        "--widths",
        "0.35",
        "--res",
        "96",
        "--no-latency",
        "--no-memory",
        "--engine",
        "dispatch",
        "--format",
        "json",
    )
    assert shown.exit_code == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["tables"]["configurations"]
    assert (row["engine"], row["madds"]) == ("dispatch", frame["madds"].iloc[0])


def test_the_cache_keeps_the_engines_apart():
    from mbprof.api.cache import analysis_key
    from mbprof.core.records import ModelSpec

    spec = ModelSpec("mobilenet_v2", 0.35, resolution=(96, 96))
    assert analysis_key(spec, None) == analysis_key(spec, None, engine="fvcore")
    assert analysis_key(spec, None) != analysis_key(spec, None, engine="dispatch")


def test_check_takes_the_engine():
    from mbprof.api.checking import prepare_check

    budgets = Path(__file__).parents[2] / "examples" / "budgets.toml"
    assert prepare_check(budgets, engine="dispatch").engine == "dispatch"
    with pytest.raises(MbprofError, match="engine"):
        prepare_check(budgets, engine="trace")
