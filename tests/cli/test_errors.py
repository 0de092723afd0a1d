"""Issue 10, clear errors: each bad input gets one line naming the option, value, file, row,
column or model (exit 2), never an internal exception or the wrong blame. The Python API,
fvcore's logger and what belongs to the process are in test_clear_errors_process.py."""

from __future__ import annotations

import os
import textwrap
import uuid
from typing import Optional

import pytest
import torch
from torch import nn

import mbprof
from mbprof.checks.budget_file import BudgetFileError, parse_budgets
from mbprof.core.errors import MbprofError, ModelRunError
from mbprof.core.parsing import parse_kwargs
from mbprof.core.units import parse_bytes, parse_count, parse_ms
from mbprof.models import ModelInfo, check_kwargs, create_model
from tests.conftest import assert_one_line_error

HEAD = '[[budget]]\nmodel = "mobilenet_v2"\nresolution = 32\n'

# --- --arg: booleans, numbers, a key twice, and the same check for budget files --------


@pytest.mark.parametrize("value", ["maybe", "flase", "1e309", "2", "none"])
def test_bool_argument_takes_true_false_only(run, value):
    result = run("profile", "mobilenet_v2", "--res", "32", "--arg", f"fix_stem_head={value}")
    assert_one_line_error(result, "'fix_stem_head'", "true or false", repr(_shown(value)))


def _shown(value: str):
    return {"2": 2, "none": None}.get(value, value)


def test_bool_argument_one_and_zero_are_booleans():
    # by the MobileNetV2 layout: the stem has 32 channels at any width with fix_stem_head,
    # make_divisible(32 * 0.5) = 16 without it.
    spec = mbprof.make_spec(
        "mobilenet_v2", width=0.5, kwargs=dict(parse_kwargs(["fix_stem_head=1"]))
    )
    assert spec.kwargs == (("fix_stem_head", True),)
    assert (
        create_model("mobilenet_v2", width=0.5, fix_stem_head=1).features[0][0].out_channels == 32
    )
    assert (
        create_model("mobilenet_v2", width=0.5, fix_stem_head=0).features[0][0].out_channels == 16
    )


def test_key_given_twice_is_refused(run):
    result = run("profile", "mobilenet_v2", "--arg", "dropout=0.1", "--arg", "dropout=0.2")
    assert_one_line_error(result, "--arg", "'dropout'", "twice")
    with pytest.raises(MbprofError, match="twice"):
        mbprof.make_spec("mobilenet_v2", kwargs=[("dropout", 0.1), ("dropout", 0.2)])


def test_float_argument_must_be_finite(run):
    assert_one_line_error(
        run("profile", "mobilenet_v2", "--arg", "dropout=1e309"), "'dropout'", "finite number"
    )
    for bad in (float("inf"), "x", True):
        with pytest.raises(MbprofError, match="'dropout' takes a finite number"):
            mbprof.make_spec("mobilenet_v2", kwargs={"dropout": bad})
    assert mbprof.make_spec("mobilenet_v2", kwargs={"dropout": 0}).kwargs == (("dropout", 0),)


def test_builder_refusing_a_value_names_the_argument(run):
    assert_one_line_error(
        run("profile", "mobilenet_v2", "--res", "32", "--arg", "dropout=2"),
        "mobilenet_v2",
        "dropout=2",
        "between 0 and 1",
    )


def test_knob_as_extra_argument_is_refused():
    with pytest.raises(MbprofError, match="'width' is one of mbprof's own knobs"):
        mbprof.make_spec("mobilenet_v2", kwargs={"width": 2})


def _info(builder) -> ModelInfo:
    return ModelInfo("test:model", builder, "test", "", "")


def test_types_come_from_annotations_then_defaults():
    def build(flag: bool | None = None, n: int = 2, scale=1.5, name="a", free=None, **rest):
        return nn.Identity()

    info = _info(build)
    assert check_kwargs(info, {"flag": 1, "n": 3, "scale": 2, "free": "x", "other": "y"}) == {
        "flag": True,
        "n": 3,
        "scale": 2,
        "free": "x",
        "other": "y",
    }
    assert check_kwargs(info, {"flag": None}) == {"flag": None}
    for key, bad, allowed in (
        ("flag", "maybe", "true or false"),
        ("n", 2.5, "an integer"),
        ("n", True, "an integer"),
        ("scale", float("nan"), "a finite number"),
        ("name", 3, "a string"),
    ):
        with pytest.raises(MbprofError, match=f"'{key}' takes {allowed}"):
            check_kwargs(info, {key: bad})


def test_types_from_evaluated_annotations():
    def build(flag=None, n=None, scale=None):
        return nn.Identity()

    build.__annotations__ = {"flag": bool, "n": Optional[int], "scale": float | None}  # noqa: UP045 - typing.Optional as older code writes it
    info = _info(build)
    assert check_kwargs(info, {"flag": 0, "n": None, "scale": None}) == {
        "flag": False,
        "n": None,
        "scale": None,
    }
    for key, bad in (("flag", "yes"), ("n", 1.5), ("scale", "x")):
        with pytest.raises(MbprofError, match=f"'{key}' takes"):
            check_kwargs(info, {key: bad})


def test_budget_args_use_the_same_check(run, tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(HEAD + 'max_madds = "300M"\nargs = { fix_stem_head = "maybe" }\n')
    assert_one_line_error(run("check", str(path)), f"{path}:5:", "'fix_stem_head'", "'maybe'")


# --- classes and batch: bounds, and the right blame when memory runs out ----------------


def test_classes_upper_bound(run):
    assert_one_line_error(run("profile", "mobilenet_v2", "--classes", str(10**12)), "--classes")
    result = run("compare", "--models", "mobilenet_v2", "--classes", str(10**12), "--no-latency")
    assert_one_line_error(result, "classes", "at most 1,000,000,000")


def test_too_many_classes_blames_classes(run, monkeypatch):
    # 100,000 classes: a 1280 x 100,000 classifier, about 0.5 GB of float32; the default
    # 1000 classes (3.5M params, 14 MB) fit in the 200 MB this test says are free.
    monkeypatch.setattr("mbprof.analysis.footprint.available_memory_bytes", lambda: 200 * 10**6)
    result = run("profile", "mobilenet_v2", "--res", "32", "--classes", "100000")
    assert_one_line_error(result, "parameters", "use fewer classes", "100,000 classes")
    assert "resolution or width" not in result.stderr


def test_large_batch_blames_batch(monkeypatch):
    monkeypatch.setattr("mbprof.analysis.footprint.available_memory_bytes", lambda: 200 * 10**6)
    spec = mbprof.make_spec("mobilenet_v2", resolution=224)
    with pytest.raises(MbprofError, match=r"batch 100,000 is the cause; about \d+ fit") as err:
        mbprof.api.build_sized(spec, batch=100_000)
    assert "activations at batch 100,000" in str(err.value)
    assert "resolution or width" not in str(err.value)


@pytest.fixture
def meta_builds_only(monkeypatch):
    """No real build of a model at all: the bounded real build of mbprof's own models is
    skipped (they are then sized on the meta device) and any other real build fails the
    test, so that a broken guard cannot allocate what it was meant to refuse."""
    import mbprof.models as models

    create = models.create_from_spec

    def on_meta_only(spec, weights=None):
        assert torch.empty(0).device.type == "meta", f"{spec.label} was built for real"
        return create(spec, weights)

    monkeypatch.setattr("mbprof.analysis.footprint.build_counted", lambda *_args: None)
    monkeypatch.setattr(models, "create_from_spec", on_meta_only)


def test_parameters_that_fit_alone_are_refused_with_a_working_copy(monkeypatch, meta_builds_only):
    # mobilenet_v2 1.0 in 1.05 x its parameters: they alone fit (as 21.5 GB of width 50 did
    # in 24.5 GB), with a working copy of the largest tensor (the 1280 x 1000 classifier)
    # and a 10% margin they do not.
    model = create_model("mobilenet_v2")
    sizes = [t.numel() * 4 for t in [*model.parameters(), *model.buffers()]]
    assert max(sizes) == 1280 * 1000 * 4
    monkeypatch.setattr(
        "mbprof.analysis.footprint.available_memory_bytes", lambda: sum(sizes) * 21 // 20
    )
    with pytest.raises(MbprofError) as err:
        mbprof.profile("mobilenet_v2", resolution=32)
    need = parse_bytes(str(err.value).split("needs about ")[1].split(" for")[0])
    assert abs(need - (sum(sizes) + max(sizes))) < 0.005 * need  # 3 digits shown
    assert "for its parameters and a working copy of the largest" in str(err.value)


def test_width_50_is_refused_in_one_line_before_it_is_built(run, monkeypatch, meta_builds_only):
    # The machine of the report: 24.5 GB available, 21.5 GB of parameters.
    monkeypatch.setattr("mbprof.analysis.footprint.available_memory_bytes", lambda: 245 * 10**8)
    result = run("profile", "mobilenet_v2", "--width", "50")
    assert_one_line_error(result, "50.0@224", "parameters and a working copy", "memory available")


def test_parameters_and_activations_are_counted_together(monkeypatch):
    # mobilenet_v2 0.35@96 with 10 classes: its parameters and its activations each fit in
    # 60% of what is free, not both in 90%.
    spec = mbprof.make_spec("mobilenet_v2", 0.35, resolution=96, num_classes=10)
    model = create_model("mobilenet_v2", width=0.35, num_classes=10)
    params = sum(t.numel() * 4 for t in [*model.parameters(), *model.buffers()])
    built = mbprof.api.building.build_sized(spec, trace=True)
    from mbprof.analysis.footprint import graph_activation_bytes

    activations = graph_activation_bytes(built.graph)
    free = max(params, activations) * 10 // 6
    assert params + activations > free * 9 // 10
    monkeypatch.setattr("mbprof.analysis.footprint.available_memory_bytes", lambda: free)
    with pytest.raises(MbprofError, match="for its parameters and activations, more than"):
        mbprof.api.building.build_sized(spec, trace=True)


def test_batch_upper_bound(run):
    assert_one_line_error(
        run("bench", "mobilenet_v2", "--batch", str(10**8)), "--batch", "1,000,000"
    )
    result = run("memory", "mobilenet_v2", "--res", "32", "--batch", str(10**8))
    assert_one_line_error(result, "batch", "too large")


# --- a model that fails, or computes nothing ------------------------------------------

USER_MODELS = """
from torch import nn

class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        raise ValueError("forward is broken")
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"clear_errors_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_forward_that_raises_names_the_model(run, user_module):
    result = run("profile", f"{user_module}:Broken", "--res", "32")
    assert_one_line_error(result, f"model '{user_module}:Broken'", "while", "forward is broken")
    # In a sweep the row names the model: its error is the model's own exception.
    frame = mbprof.compare(f"{user_module}:Broken", resolutions=32, accuracy=False)
    assert frame.loc[0, "error"] == "ValueError: forward is broken"


def test_failure_names_the_phase(monkeypatch):
    def fails(*_args, **_kwargs):
        raise ValueError("no")

    monkeypatch.setattr("mbprof.analysis.counting.count", fails)
    with pytest.raises(ModelRunError, match="'mobilenet_v2' failed while counting its MAdds"):
        mbprof.profile("mobilenet_v2", resolution=32, with_memory=False)


def test_identity_model_is_one_line(run):
    for command in ("profile", "memory"):
        result = run(command, "torch.nn:Identity", "--res", "32")
        assert_one_line_error(result, "'torch.nn:Identity'", "computes nothing")


# --- numbers in budget files ------------------------------------------------------------


def test_overflowing_numbers_are_refused():
    for parse, text in ((parse_count, "1e400M"), (parse_bytes, "1e300GB"), (parse_ms, "1e308 s")):
        with pytest.raises(MbprofError, match="too large"):
            parse(text, "limit")
    with pytest.raises(BudgetFileError, match=r"^b\.toml:4: .*max_madds.*'1e400M'"):
        parse_budgets(HEAD + 'max_madds = "1e400M"\n', "b.toml")


def test_deeply_nested_toml_is_one_line():
    text = HEAD + 'max_madds = "300M"\nargs = { x = ' + "[" * 100_000 + "]" * 100_000 + " }\n"
    with pytest.raises(BudgetFileError, match=r"^deep\.toml:5: .*nested too deeply"):
        parse_budgets(text, "deep.toml")


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ('min_time = "1e9 s"', "max_latency.min_time: '1e9 s' is too long; give at most 3600 s"),
        ("warmup = 1000000000", "max_latency.warmup: 1000000000 is too large"),
        ("batch = 100000000", "max_latency.batch: 100000000 is too large"),
        ("threads = 100000", "max_latency.threads: 100000 is too large; give at most 4,096"),
    ],
)
def test_budget_latency_bounds(entry, fragment):
    with pytest.raises(BudgetFileError, match=r"^b\.toml:4: ") as err:
        parse_budgets(HEAD + f'max_latency = {{ limit = "25 ms", {entry} }}\n', "b.toml")
    assert fragment in str(err.value)


# --- latency option bounds ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--threads", "10000"], "logical CPUs of this machine"),
        (["--min-time", "1e9"], "--min-time: '1e9' is too large; give a number > 0 and <= 3600 s"),
        (["--warmup", str(10**24)], "--warmup: 1000000000000000000000000 is too large"),
    ],
)
def test_latency_option_bounds(run, args, fragment):
    assert_one_line_error(run("bench", "mobilenet_v2", "--res", "32", *args), fragment)


def test_bounds_are_in_the_help(run):
    text = " ".join(run("bench", "--help").stdout.replace("\u2502", " ").split())
    assert "<= 3600" in text and "from 0 to 10,000" in text and "logical CPUs" in text


# --- plot input --------------------------------------------------------------------------

FRAME = "model,width,depth,resolution,madds,params\n"


@pytest.mark.parametrize(
    "rows, args, fragment",
    [
        (
            "m,1.0,1.0,224,300,3.5\nm,0.5,1.0,224,lots,2\n",
            [],
            "row 2, column 'madds': 'lots' is not a number",
        ),
        (
            "m,1.0,1.0,224,300,3.5\nm,0.5,1.0,224,inf,2\n",
            ["--log-x"],
            "row 2, column 'madds': inf is not a finite",
        ),
        ("m,1.0,1.0,224,300,3.5\nm,0.5,1.0,224,inf,2\n", [], "row 2, column 'madds'"),
        ("m,x,1.0,224,300,3.5\n", [], "row 1, column 'width': 'x' is not a number"),
    ],
)
def test_plot_refuses_bad_cells(run, tmp_path, rows, args, fragment):
    path = tmp_path / "frame.csv"
    path.write_text(FRAME + rows)
    result = run(
        "plot", str(path), "--x", "madds", "--y", "params", *args, "-p", str(tmp_path / "f.png")
    )
    assert_one_line_error(result, str(path), fragment)


def test_plot_needs_width_column(run, tmp_path):
    path = tmp_path / "frame.csv"
    path.write_text("model,resolution,madds,params\nm,224,300,3.5\n")
    result = run("plot", str(path), "--x", "madds", "--y", "params", "-p", str(tmp_path / "f.png"))
    assert_one_line_error(result, str(path), "no 'width' column")


# --- weights -------------------------------------------------------------------------------


def test_random_bytes_as_weights_never_suggest_weights_only_false(run, tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 8)
    result = run("profile", "mobilenet_v2", "--res", "32", "--weights", str(path))
    assert_one_line_error(result, "not a readable PyTorch checkpoint")
    assert "False" not in result.stderr and "Re-running" not in result.stderr


def test_code_in_weights_is_named_not_advised(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "code.pt"
    torch.save({"w": torch.zeros(1), "p": Payload()}, path)
    with pytest.raises(MbprofError) as err:
        create_model("mobilenet_v2", weights=path)
    assert f"refers to {os.getcwd.__module__}.getcwd" in str(err.value)
    assert "False" not in str(err.value)


# --- issue 23: a typo of a figure's extension, pydantic's words in a bad choice ---------


def test_a_typo_of_a_figure_extension_is_refused_and_nothing_written(run, tmp_path):
    target = tmp_path / "x.pgn"
    result = run("plot", "reports/sweep.csv", "--output", str(target))
    assert_one_line_error(result, "--output", ".pgn", "did you mean .png?")
    assert not target.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--format", "yaml"], ["--by", "blah"]])
def test_a_bad_choice_names_the_choices_without_pydantic(run, args):
    result = run("profile", "mobilenet_v2", *args)
    assert_one_line_error(result, args[0], repr(args[1]), "is not one of")
    assert "Value error" not in result.stderr
