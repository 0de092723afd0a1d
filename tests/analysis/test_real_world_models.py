"""Real-world networks profile, size and count as their authors publish them: each failure
class that torchvision's zoo showed (benchmarks/zoo.py), reproduced by a small model of
tests/support/real_world_models.py given by import path, as a user would.

Independent values: torch's FlopCounterMode (MAdds), hand sums of parameter shapes, and
the same architecture written without the trick (memory)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mbprof
from mbprof.core.errors import ModelRunError, ResourceError
from tests.support import real_world_models as zoo
from tests.support.flop_reference import single_thread, torch_madds  # noqa: F401  (fixture)

PATH = "tests.support.real_world_models:"


def profile(name: str, resolution: int, **options):
    return mbprof.profile(PATH + name, resolution=resolution, num_classes=10, **options)


def fc_and_convs(model: torch.nn.Module) -> int:
    """Hand sum of weight and bias shapes, from the modules' own geometry."""
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            total += m.out_channels * m.in_channels // m.groups * m.kernel_size[0] ** 2
            total += m.out_channels if m.bias is not None else 0
        elif isinstance(m, torch.nn.Linear):
            total += m.out_features * (m.in_features + 1)
    return total


def test_a_builder_that_reads_a_tensor_back_is_sized_with_parameters_moved_to_meta():
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        with torch.device("meta"):
            zoo.ArangeWidths()  # the reproduction is real: RegNet's failure on the meta device
    result = profile("ArangeWidths", 96, with_memory=False)
    real = zoo.ArangeWidths()
    assert result.counts.madds == torch_madds(real, (1, 3, 96, 96))
    assert result.counts.params == result.counts.params_used == fc_and_convs(real)
    assert len(result.notes) == 1
    assert "moved to the meta device as it was registered" in result.notes[0]
    assert "Cannot copy out of meta tensor" in result.notes[0]
    # Memory works on the same model, and equals the architecture written out plainly.
    got = mbprof.memory(PATH + "ArangeWidths", resolution=96, num_classes=10)
    plain = mbprof.memory(PATH + "LiteralWidths", resolution=96, num_classes=10)
    assert got.peak.live_bytes == plain.peak.live_bytes > 0
    assert got.eager_peak_bytes == plain.eager_peak_bytes


# Builders and forward passes that run only for real: counted, and stopped (refused) once
# what they allocate passes free memory. ReadsParameter's conv weight is 864 bytes;
# FixedInputReadsValues' 13,032 bytes of parameters fit in 50 kB, its zero input does not.
REAL_PATHS = [
    ("ReadsParameter", "parameters counted by building it for real", 500, "parameters"),
    (
        "FixedInputReadsValues",
        "activations sized by a real forward pass at 96x96",
        50_000,
        "activations \\(a real forward pass, stopped\\)",
    ),
]


@pytest.mark.parametrize(("name", "note", "budget", "refused"), REAL_PATHS)
def test_what_runs_only_for_real_is_counted_and_bounded(monkeypatch, name, note, budget, refused):
    result = profile(name, 96, with_memory=False)
    real = getattr(zoo, name)()
    assert result.counts.madds == torch_madds(real, (1, 3, 96, 96))
    scale = 1 if name == "ReadsParameter" else 0
    assert result.counts.params == fc_and_convs(real) + scale
    assert result.notes[0].startswith(note)
    assert "Tensor.item() cannot be called on meta tensors" in result.notes[0]
    monkeypatch.setattr("mbprof.analysis.footprint.available_memory_bytes", lambda: budget)
    with pytest.raises(ResourceError, match=f"needs about .* for its {refused}"):
        profile(name, 96, with_memory=False)


def test_a_fixed_input_size_is_sized_on_meta_at_the_requested_resolution():
    result = profile("FixedInput", 96)
    real = zoo.FixedInput()
    assert result.counts.madds == torch_madds(real, (1, 3, 96, 96))
    assert result.notes == (
        "activations sized on the meta device at 96x96: the 64x64 probe failed "
        "(AssertionError: Wrong image height! Expected 96 but got 64!)",
    )
    assert result.memory is not None and result.memory.peak.live_bytes > 0
    settings = mbprof.make_latency_settings(min_time_s=0.001, warmup=0, threads=1)
    timed = mbprof.bench(PATH + "FixedInput", resolution=96, num_classes=10, settings=settings)
    assert timed.timing.latency_ms > 0 and timed.timing.madds == result.counts.madds
    assert timed.timing.notes[0] == result.notes[0]


def test_a_fixed_input_size_at_another_resolution_is_the_model_s_error():
    with pytest.raises(ModelRunError) as err:
        profile("FixedInput", 80, with_memory=False)
    assert str(err.value).startswith(f"model '{PATH}FixedInput' failed while running its forward")
    assert str(err.value).endswith("AssertionError: Wrong image height! Expected 96 but got 80!")


def test_data_dependent_control_flow_is_counted_for_the_path_a_zero_input_takes():
    result = profile("BranchesOnValues", 32, with_memory=False)
    real = zoo.BranchesOnValues()
    assert result.counts.madds == torch_madds(real, (1, 3, 32, 32))  # refine not run
    refine = fc_and_convs(real.refine)
    assert result.counts.params_used == result.counts.params - refine
    assert any("reads tensor values into Python" in note for note in result.notes)


def test_tensor_conditions_torch_assert_counts_torch_check_is_refused():
    result = profile("AssertsTensor", 32, with_memory=False)
    assert result.counts.madds == torch_madds(zoo.AssertsTensor(), (1, 3, 32, 32))
    with pytest.raises(TypeError, match="cond must be a bool"):
        zoo.ChecksTensor()(torch.zeros(1, 3, 32, 32))  # eager PyTorch refuses it too
    for resolution in (32, 96):  # the forward pass at its own resolution, or after the probe
        with pytest.raises(ModelRunError, match=f"'{PATH}ChecksTensor' failed .*cond must be"):
            profile("ChecksTensor", resolution, with_memory=False)


def test_an_auxiliary_head_unused_in_eval_is_apart_in_params_used():
    result = profile("AuxiliaryHead", 32, with_memory=False)
    real = zoo.AuxiliaryHead()
    aux = fc_and_convs(real.aux) + fc_and_convs(real.aux_fc)
    assert result.counts.params == fc_and_convs(real)
    assert result.counts.params_used == result.counts.params - aux
    rows = {row.path: row for row in result.counts.layers}
    assert rows["aux.0"].params_used == 0 and rows["aux_fc"].params_used == 0
    assert rows["stem"].params_used == rows["stem"].params > 0
    assert result.notes == (
        f"params_used {result.counts.params_used:,} of {result.counts.params:,}: the inference "
        f"forward pass never reads {aux:,} parameters (in aux, aux_fc)",
    )


def test_a_parameter_read_without_calling_its_module_is_used():
    model = zoo.FunctionalUse().eval()
    called = []
    model.qkv.register_forward_pre_hook(lambda *_: called.append("qkv"))
    model(torch.zeros(1, 3, 32, 32))
    assert called == []  # the reproduction is real: Swin reads qkv.weight without calling qkv
    for name in ("FunctionalUse", "MultiHeadAttention"):
        result = profile(name, 32, with_memory=False)
        assert result.counts.params_used == result.counts.params, name
        assert not [note for note in result.notes if "params_used" in note]  # attention's may be


@pytest.mark.parametrize("name", ["FunctionalUse", "MultiHeadAttention"])
def test_fused_attention_madds_match_flop_counter_mode(name):
    # On the meta device FlopCounterMode sees attention decomposed into bmm (on the CPU the
    # fused kernel has no formula there); halved, it is multiply-accumulates.
    with torch.device("meta"):
        model = getattr(zoo, name)().eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32, device="meta"))
    result = profile(name, 32, with_memory=False)
    assert result.counts.madds == counter.get_total_flops() // 2
    assert "aten::scaled_dot_product_attention" not in result.counts.uncounted_ops


def test_rows_carry_params_used_and_notes():
    frame = mbprof.compare(
        [PATH + "AuxiliaryHead", PATH + "FixedInput", "mobilenet_v2"],
        resolutions=96,
        num_classes=10,
        with_memory=False,
        accuracy=False,
    ).set_index("model")
    aux, fixed = frame.loc[PATH + "AuxiliaryHead"], frame.loc[PATH + "FixedInput"]
    assert aux["params_used"] < aux["params"] and "(in aux, aux_fc)" in aux["notes"]
    assert fixed["params_used"] == fixed["params"]
    assert fixed["notes"].startswith("activations sized on the meta device at 96x96")
    mobilenet = frame.loc["mobilenet_v2"]
    assert mobilenet["params_used"] == mobilenet["params"] == 2_236_682  # 10 classes
    assert mobilenet.isna()["notes"]
