"""An nn.Module instance is a target of every measuring API function, beside registered
models, with figures computed by hand; the same class given as an import path gives the
same figures; a bad target is refused in one line naming its type."""

from __future__ import annotations

import pytest
import torch

import mbprof
from mbprof.core.errors import MbprofError
from tests.support.tiny_models import ConvBnLinear

PATH = "tests.support.tiny_models:ConvBnLinear"
# By hand, at 32x32: the conv writes 8 x 16 x 16 outputs of 3 x 3 x 3 MACs each, the
# linear 8 x 10; parameters: conv 8 x 27, batch norm 2 x 8, linear 80 + 10 biases.
MADDS = 8 * 16 * 16 * 27 + 8 * 10  # 55,376
PARAMS = 8 * 27 + 2 * 8 + 8 * 10 + 10  # 322
# fp16, the input image not counted: batch norm and ReLU write over the conv's output
# (8 x 16 x 16 x 2 = 4096 bytes); the pooling holds it and writes 8 x 2 bytes.
PEAK = 8 * 16 * 16 * 2 + 8 * 2  # 4,112


def test_a_module_is_profiled_and_sized_as_counted_by_hand():
    result = mbprof.profile(ConvBnLinear(), input_size=(3, 32, 32))
    assert result.spec.label == "ConvBnLinear 1.0@32"
    assert (result.counts.madds, result.counts.params) == (MADDS, PARAMS)
    assert result.flops is not None and result.flops.by_kind["multiply_adds"] == 2 * MADDS
    assert result.memory is not None and result.memory.peak.live_bytes == PEAK
    sized = mbprof.memory(ConvBnLinear(), input_size=torch.zeros(1, 3, 32, 32), name="mine")
    assert sized.peak.live_bytes == PEAK


def test_the_same_module_by_import_path_gives_the_same_figures():
    held = mbprof.profile(ConvBnLinear(), resolution=32, name="held")
    imported = mbprof.profile(PATH, resolution=32)
    assert imported.spec.label == f"{PATH} 1.0@32" and held.spec.label == "held 1.0@32"
    assert (imported.counts.madds, imported.counts.params) == (MADDS, PARAMS)
    assert imported.counts.layers == held.counts.layers
    assert imported.memory == held.memory and imported.flops == held.flops


def test_a_module_is_timed_with_its_own_weights():
    module = ConvBnLinear()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    settings = mbprof.make_latency_settings(min_time_s=0.001, warmup=0, threads=1)
    result = mbprof.bench(module, input_size=(1, 3, 32, 32), settings=settings)
    assert result.timing.madds == MADDS and result.timing.latency_ms > 0
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # not calibrated


def test_a_module_is_compared_beside_a_registered_model(tmp_path):
    settings = mbprof.make_latency_settings(min_time_s=0.001, warmup=0, threads=1)
    frame = mbprof.compare(
        models=["mobilenet_v2", ConvBnLinear(), ("other", ConvBnLinear())],
        widths=[0.35, 1.0],  # a module has no width: one row per resolution
        resolutions=32,
        accuracy=False,
        latency=settings,
        workers=2,  # modules stay in this process
        cache=tmp_path,
    )
    assert list(frame["model"]) == ["mobilenet_v2"] * 2 + ["ConvBnLinear", "other"]
    mine = frame[frame["model"] != "mobilenet_v2"]
    assert list(mine["madds"]) == [MADDS] * 2 and list(mine["params"]) == [PARAMS] * 2
    assert list(mine["peak_act_bytes"]) == [PEAK] * 2
    assert (frame["latency_ms"] > 0).all()
    # mobilenet_v2 0.35@32 by its own profile; only the two registered rows are cached
    assert frame["madds"][0] == mbprof.profile("mobilenet_v2", 0.35, resolution=32).counts.madds
    assert len(list((tmp_path / "results").glob("*.json"))) == 2


def test_a_module_is_checked_against_a_budget_file(tmp_path):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[[budget]]\nmodel = "tiny"\nresolution = 32\n'
        f"max_madds = {MADDS}\nmax_params = {PARAMS - 1}\n"
    )
    outcome = mbprof.check(budgets, modules={"tiny": ConvBnLinear()})
    assert [r.passed for r in outcome.results] == [True, False]
    with pytest.raises(MbprofError, match="modules: an object of type str is not an nn.Module"):
        mbprof.check(budgets, modules=["tiny"])


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (42, "an object of type int"),
        ({"model": "x"}, "an object of type dict"),
        (ConvBnLinear, "the class ConvBnLinear"),
    ],
)
def test_a_bad_target_is_one_line_naming_its_type(target, kind):
    with pytest.raises(MbprofError) as err:
        mbprof.profile(target)
    message = str(err.value)
    assert "\n" not in message and f"{kind} is not a model" in message
    assert "nn.Module instance" in message and "mobilenet_v2" in message


def test_labels_of_modules_are_checked():
    with pytest.raises(MbprofError, match="registered model's name"):
        mbprof.profile(ConvBnLinear(), name="mobilenet_v2")
    with pytest.raises(MbprofError, match="two modules have the same label"):
        mbprof.make_specs([ConvBnLinear(), ConvBnLinear()])
    with pytest.raises(MbprofError, match="takes no 'width'"):
        mbprof.profile(ConvBnLinear(), width=0.5)
    with pytest.raises(MbprofError, match="input_size: an object of type str"):
        mbprof.profile(ConvBnLinear(), input_size="3x32x32")
