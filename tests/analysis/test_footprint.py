"""The sizing guard (``mbprof.analysis.footprint``) and the parameters inference reads
(``mbprof.analysis.counting``), on the small models of tests/support/real_world_models.py:
each path taken where the cheaper one fails, and the caller's model never changed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mbprof
from mbprof.analysis import footprint
from mbprof.analysis.counting import read_parameters, unused_modules
from mbprof.analysis.footprint import META, REAL, REGISTERED, activation_bytes, size_parameters
from mbprof.core.errors import MbprofError, UserCodeExit
from tests.support import real_world_models as zoo
from tests.support.flop_reference import single_thread, torch_madds  # noqa: F401  (fixture)

BUDGET = 10**9
PATH = "tests.support.real_world_models:"


def devices(model: nn.Module) -> set[str]:
    return {t.device.type for t in [*model.parameters(), *model.buffers()]}


def elements(model: nn.Module) -> int:
    return sum(t.numel() for t in [*model.parameters(), *model.buffers()])


class WithBatchNorm(zoo.ArangeWidths):
    """ArangeWidths with a batch norm: buffers are moved as they are registered too."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(24)


@pytest.mark.parametrize(
    ("build", "path", "device"),
    [
        (zoo.LiteralWidths, META, "meta"),
        (zoo.ArangeWidths, REGISTERED, "meta"),
        (WithBatchNorm, REGISTERED, "meta"),
        (zoo.ReadsParameter, REAL, "cpu"),
    ],
)
def test_parameters_are_sized_by_the_cheapest_path_that_works(build, path, device):
    sizing = size_parameters(build, BUDGET)
    assert sizing.path == path
    assert devices(sizing.model) == {device}
    expected = elements(build())  # a real build, counted independently
    assert elements(sizing.model) == expected
    assert (sizing.note == "") == (path == META)


def test_mbprof_s_own_refusals_and_exits_are_not_retried():
    calls = []

    def refused() -> nn.Module:
        calls.append(1)
        raise MbprofError("model 'x' cannot be called with width=2")  # no cause: bad input

    def exits() -> nn.Module:
        calls.append(1)
        raise UserCodeExit("model 'x' called sys.exit(3) while being built")

    for build in (refused, exits):
        calls.clear()
        with pytest.raises(MbprofError):
            size_parameters(build, BUDGET)
        assert len(calls) == 1


def test_a_builder_that_fails_for_real_fails_with_its_own_error():
    def broken() -> nn.Module:
        raise ValueError("no such layer")

    with pytest.raises(ValueError, match="no such layer"):
        size_parameters(broken, BUDGET)


def test_the_registrations_are_summed_before_the_build_finishes():
    built = []

    class Big(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(100, 100)  # 40,400 bytes: passes a 40,000-byte budget
            built.append("first")
            self.second = nn.Linear(100, 100)
            built.append("second")

    with pytest.raises(footprint.OverBudget) as err, footprint.parameters_bounded(40_000):
        Big()
    assert built == [] and err.value.need == 100 * 100 * 4 + 100 * 4  # weight, then bias
    with footprint.parameters_to_meta():
        assert devices(Big()) == {"meta"}
    assert devices(nn.Linear(2, 2)) == {"cpu"}  # the hooks are gone afterwards


@pytest.mark.parametrize("name", ["FixedInput", "KernelOutgrowsProbe"])
def test_a_failed_probe_sizes_on_meta_and_leaves_the_caller_s_model_alone(name):
    model = getattr(zoo, name)().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    side = zoo.FIXED_SIDE if name == "FixedInput" else 160
    estimate, note = activation_bytes(model, (1, 3, side, side))
    assert note.startswith(f"activations sized on the meta device at {side}x{side}")
    assert devices(model) == {"cpu"}  # the bug that made fvcore say "cond must be a bool"
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    if name == "FixedInput":  # the largest leaf op by hand: the patch conv, float32
        patch = 3 * 96 * 96 * 4 + 16 * 12 * 12 * 4
        assert estimate == footprint.SAFETY * patch


def test_inception_s_probe_failure_counts_on_the_real_model():
    result = mbprof.profile(PATH + "KernelOutgrowsProbe", resolution=160, num_classes=10)
    real = zoo.KernelOutgrowsProbe()
    assert result.counts.madds == torch_madds(real, (1, 3, 160, 160))
    assert "Kernel size can't be greater than actual input size" in result.notes[0]


def test_the_proxy_is_used_when_it_runs():
    model = zoo.LiteralWidths().eval()
    estimate, note = activation_bytes(model, (1, 3, 128, 128))
    # the stem conv at 64x64 (3 x 64 x 64 in, 8 x 32 x 32 out, float32), scaled by 4
    assert note == "" and estimate == footprint.SAFETY * (3 * 64 * 64 + 8 * 32 * 32) * 4 * 4


def test_reads_run_on_meta_unless_the_forward_pass_reads_values():
    model = zoo.FunctionalUse().eval()
    reads = read_parameters(model, (1, 3, 32, 32))
    assert not reads.values_read
    assert reads.read == {id(p) for p in model.parameters()}
    branching = zoo.BranchesOnValues().eval()
    reads = read_parameters(branching, (1, 3, 32, 32))
    assert reads.values_read
    assert reads.read == {id(p) for p in branching.parameters()} - {
        id(p) for p in branching.refine.parameters()
    }
    assert unused_modules(branching, reads.read) == ["refine"]


def test_tied_weights_are_one_parameter():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(4, 4, bias=False)
            self.out = nn.Linear(4, 4, bias=False)
            self.out.weight = self.embed.weight
            self.unused = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.embed(x))

    model = Tied().eval()
    reads = read_parameters(model, (1, 3, 8, 4))
    assert reads.read == {id(model.embed.weight)}
    assert sum(p.numel() for p in model.parameters() if id(p) in reads.read) == 16
    assert unused_modules(model, reads.read) == ["unused"]
