"""`mbprof check` through the CLI: exit codes 0/1/2, formats, GitHub, JUnit, baselines.

The configuration measured is MobileNetV1 0.25 at 64x64 with 10 classes (fast); its
counts are computed by hand below from the architecture (TF-Slim's width rule), not
taken from mbprof.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from mbprof.cli import app
from tests.support import ROOT

LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
LAYERS += [(1024, 2), (1024, 1)]


def mobilenet_v1_by_hand(width: float, res: int, classes: int) -> tuple[int, int]:
    """MAdds and params of MobileNetV1: stem 3x3 s2 conv, 13 (dw 3x3 + pw 1x1) layers,
    each conv followed by batch norm (2 params a channel), then a linear layer with bias;
    channels max(int(c x width), 8); a 3x3 conv with padding 1 maps h to (h - 1) // s + 1."""

    def depth(c: int) -> int:
        return max(int(c * width), 8)

    side = (res - 1) // 2 + 1
    ch = depth(32)
    madds, params = 27 * ch * side * side, 27 * ch + 2 * ch
    for out, stride in LAYERS:
        out = depth(out)
        side = (side - 1) // stride + 1
        madds += 9 * ch * side * side + ch * out * side * side
        params += 9 * ch + 2 * ch + ch * out + 2 * out
        ch = out
    return madds + ch * classes, params + ch * classes + classes


MADDS, PARAMS = mobilenet_v1_by_hand(0.25, 64, 10)
# The budget files below name CONFIG again and again: it is built and counted once.
pytestmark = pytest.mark.usefixtures("measure_once")
CONFIG = '[[budget]]\nmodel = "mobilenet_v1"\nwidth = 0.25\nresolution = 64\nclasses = 10\n'


def test_hand_count_matches_the_published_mobilenet_v1():
    # The same hand computation at 1.0@224 gives TF-Slim's 569M MAdds and 4.2M params.
    madds, params = mobilenet_v1_by_hand(1.0, 224, 1000)
    assert round(madds / 1e6) == 569 and round(params / 1e5) == 42
    assert (MADDS, PARAMS) == (3_331_072, 215_642)


def run(*args, env=None):
    return CliRunner().invoke(app, list(map(str, args)), env=env)


@pytest.fixture
def write(tmp_path):
    def _write(text: str, name: str = "budgets.toml"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def test_all_limits_hold_exit_0_with_measured_figures_and_headroom(write):
    path = write(
        CONFIG + 'max_madds = "3.4M"\nmax_params = "216K"\n'
        'max_peak_memory = [ "50 KB", { limit = "49152 B", mode = "efficient" }, '
        '{ limit = "100 KB", dtype = "fp32" } ]\n'
    )
    result = run("check", path, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    madds, params, *memory = payload["tables"]["limits"]
    # Peak activations by hand: the first pointwise conv, 8 channels in and 16 out at
    # 32x32 (MobileNetV1 has no block that narrows, so both modes agree).
    peak_fp16 = (8 + 16) * 32 * 32 * 2
    assert [m["measured"] for m in memory] == [peak_fp16, peak_fp16, 2 * peak_fp16]
    assert [m["headroom"] for m in memory] == [50_000 - 49_152, 0, 100_000 - 98_304]
    assert memory[1]["configuration"].endswith("[fp16, efficient, T=channel]")
    assert memory[2]["configuration"].endswith("[fp32, materialized]")
    assert (madds["metric"], madds["measured"], madds["limit"]) == ("max_madds", MADDS, 3.4e6)
    assert madds["headroom"] == 3_400_000 - MADDS == 68_928
    assert madds["headroom_pct"] == pytest.approx(100 * 68_928 / 3_400_000)
    assert params["measured"] == PARAMS and params["headroom"] == 216_000 - PARAMS == 358
    assert madds["where"] == f"{path}:6" and params["where"] == f"{path}:7"
    assert madds["status"] == params["status"] == "held"
    assert payload["passed"] is True and payload["summary"]["held"] == 5


def test_exceeded_exit_1_names_metric_and_configuration_github_and_junit(
    write, tmp_path, monkeypatch
):
    path = write(CONFIG + 'max_madds = "3.4M"\nmax_params = "215K"\n')
    summary = tmp_path / "summary.md"
    junit = tmp_path / "junit.xml"
    result = run(
        "check",
        path,
        "--format",
        "github",
        "--junit",
        junit,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 1, result.output
    # stderr: which metric, which configuration, by how much
    assert f"{path}:7: mobilenet_v1 0.25@64: max_params exceeded" in result.stderr
    assert "measured 215.64K > limit 215.00K by 642 (0.3%)" in result.stderr
    # stdout: one annotation for the failed limit, none for the held one
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"::error file={path},line=7,title=mbprof budget%3A max_params")
    assert "::mobilenet_v1 0.25@64: max_params exceeded" in lines[0]
    # the step summary went to the file
    text = summary.read_text()
    assert text.startswith("**mbprof check failed**: 1 of 2 limits not met.")
    assert "| max_params |" in text and "| exceeded |" in text
    # JUnit XML, parsed back
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["max_madds", "max_params"]
    assert [c.get("line") for c in cases] == ["6", "7"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "max_params exceeded" in failure.get("message")
    props = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert props["measured"] == "215.64K" and props["limit"] == "215.00K"
    assert props["headroom"] == "-642" and props["status"] == "exceeded"


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ('[[budget]]\nmodel = "mobilenet_v2"\nmax_madds = 310M\n', [":3: not valid TOML"]),
        (
            '[[budget]]\nmodel = "mobilenet_v2"\nmax_madd = "310M"\n',
            [":3: budget 1, max_madd: unknown key 'max_madd'", "did you mean 'max_madds'"],
        ),
        (
            '[[budget]]\nmodel = "mobilenet_v2"\nmax_madds = "310Q"\n',
            [":3:", "unknown unit 'Q'"],
        ),
        (
            '[[budget]]\nmodel = "mobilenetv2"\nmax_madds = "310M"\n',
            [":2: budget 1, model: unknown model 'mobilenetv2'", "did you mean mobilenet_v2"],
        ),
        (
            '[[budget]]\nmodel = "mobilenet_v2"\nwidth = "big"\nmax_madds = "310M"\n',
            [":3: budget 1, width: expected a number > 0, got a string 'big'"],
        ),
        (
            '[[budget]]\nmodel = "mobilenet_v1"\ndepth = 1.5\nmax_madds = "310M"\n',
            [":3: budget 1, depth:", "no depth multiplier"],
        ),
        (
            '[[budget]]\nmodel = "mobilenet_v1"\nargs = { drop = 0.1 }\nmax_madds = "1M"\n',
            [":3: budget 1, args:", "does not take argument 'drop'"],
        ),
    ],
)
def test_wrong_files_exit_2_with_one_line(write, text, pieces):
    path = write(text)
    result = run("check", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mbprof: error: {path}:")
    for piece in pieces:
        assert piece in line, (piece, line)


def test_wrong_file_in_github_format_is_also_an_annotation(write):
    path = write('[[budget]]\nmodel = "mobilenet_v2"\nmax_madds = 310M\n')
    result = run("check", path, "--format", "github")
    assert result.exit_code == 2
    assert result.stdout.startswith(f"::error file={path},line=3,title=mbprof budget file::")


@pytest.mark.parametrize(
    ("args", "piece"),
    [
        (["check"], "give a budget file"),
        (["check", "missing.toml"], "missing.toml: no such file"),
        (["check", "--baseline", "b.json", "--update-baseline", "--tolerance", "x"], "GROUP="),
        (["check", "--baseline", "nope.json"], "create it with --update-baseline"),
        (["check", "x.toml", "--update-baseline"], "--update-baseline needs --baseline"),
        (["check", "x.toml", "--tolerance", "latency=20"], "'20' is not a percentage"),
        (["check", "x.toml", "--format", "yaml"], "yaml"),
        (["check", "x.toml", "--junit", "/no/such/dir/j.xml"], "--junit"),
    ],
)
def test_bad_options_exit_2(args, piece, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert piece in result.stderr


def _results_file(tmp_path, **figures):
    row = {
        "model": "mobilenet_v1",
        "width": 0.25,
        "depth": 1.0,
        "resolution": "64",
        "input_h": 64,
        "input_w": 64,
        "num_classes": 10,
        "madds": MADDS,
        "params": PARAMS,
    }
    row.update(figures)
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"title": "Configurations", "tables": {"configurations": [row]}}))
    return path


def test_results_file_instead_of_measuring_and_text_formats(write, tmp_path):
    saved = _results_file(
        tmp_path, peak_act_bytes=500_000, peak_act_bytes_efficient=100_000, mem_dtype="fp16"
    )
    path = write(
        CONFIG + 'max_madds = "3.4M"\n'
        'max_peak_memory = [ "0.6 MB", { limit = "90 KB", mode = "efficient" } ]\n'
    )
    result = run("check", path, "--results", saved, "--format", "csv")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("where,configuration,metric,limit_text,measured_text")
    assert len(lines) == 4
    assert (
        "mobilenet_v1 0.25@64 [fp16, efficient, T=channel]: max_peak_memory exceeded"
        in result.stderr
    )
    assert "measured 100.00 KB > limit 90.00 KB by 10.00 KB (11.1%)" in result.stderr
    markdown = run("check", path, "--results", saved, "--format", "markdown")
    assert "| 600.00 KB | 500.00 KB | 100.00 KB | 16.7% |" in markdown.stdout
    table = run("check", path, "--results", saved, "--output", tmp_path / "out.txt")
    assert table.exit_code == 1 and "exceeded" in (tmp_path / "out.txt").read_text()


def test_results_file_that_lacks_a_configuration_is_bad_input(write, tmp_path):
    saved = _results_file(tmp_path)
    path = write(CONFIG.replace("0.25", "0.5") + 'max_madds = "3.4M"\n')
    result = run("check", path, "--results", saved)
    assert result.exit_code == 2
    assert f"{path}:6: no measurement of madds for mobilenet_v1 0.5@64" in result.stderr


def test_baseline_round_trip_and_a_regression(write, tmp_path):
    budgets = write(CONFIG + 'max_params = "1M"\nmax_peak_memory = "1 MB"\n')
    base = tmp_path / "base.json"
    # 1. a new baseline from the budget file's configurations (a fresh measurement)
    result = run("check", budgets, "--baseline", base, "--update-baseline")
    assert result.exit_code == 0, result.output
    saved = json.loads(base.read_text())
    (row,) = saved["tables"]["configurations"]
    assert (row["madds"], row["params"]) == (MADDS, PARAMS)
    assert (row["peak_act_bytes"], row["mem_dtype"], row["mem_chunks"]) == (
        49_152,
        "fp16",
        "channel",
    )
    # 2. the baseline claims fewer MAdds than the model has: a regression, exit 1
    row["madds"] = MADDS - 1000
    base.write_text(json.dumps(saved))
    result = run("check", "--baseline", base, "--format", "json")
    assert result.exit_code == 1
    limits = json.loads(result.stdout)["tables"]["limits"]
    assert [lim["metric"] for lim in limits] == [
        "madds",
        "params",
        "peak_act_bytes",
        "peak_act_bytes_efficient",
    ]
    assert [lim["status"] for lim in limits] == ["exceeded", "held", "held", "held"]
    madds = limits[0]
    assert madds["headroom"] == -1000 and madds["tolerance_pct"] == 0.0
    assert "madds regressed: measured 3.33M > baseline 3.33M by 1.00K (0.0%)" in result.stderr
    # 3. a 1% tolerance on MAdds lets it pass (with a warning)
    result = run("check", "--baseline", base, "--tolerance", "madds=1%", "--format", "github")
    assert result.exit_code == 0
    assert result.stdout.startswith("::warning file=")
    # 4. --update-baseline accepts the new figures and rewrites the file
    result = run("check", "--baseline", base, "--update-baseline")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(base.read_text())["tables"]["configurations"]
    assert row["madds"] == MADDS


def test_the_example_budget_file_is_valid_and_holds_for_the_published_counts():

    from mbprof.api.checking import check_specs
    from mbprof.checks.budget_file import load_budgets
    from mbprof.checks.matching import check_rows

    example = ROOT / "examples" / "budgets.toml"
    budgets = load_budgets(example).budgets
    check_specs(budgets)  # every model and knob accepted by the registry
    # Published counts (shared/reference/architectures.md; MobileNetV1 by hand above) and
    # peak activations by hand (fp16, 2 bytes): MobileNetV2's materialized peak is the
    # stride-2 depthwise conv of block 2 (96 x 112 x 112 in, 96 x 56 x 56 out); its
    # memory-efficient peak is that block run in chunks (16 x 112 x 112 in, 24 x 56 x 56
    # out, one 112 x 112 channel); MobileNetV1's is its first pointwise conv (32 + 64
    # channels at 112 x 112).
    v1_madds, v1_params = mobilenet_v1_by_hand(1.0, 224, 1000)
    memory = {"mem_dtype": "fp16", "mem_chunks": "channel"}
    rows = [
        {
            "model": "mobilenet_v2",
            "width": 1.0,
            "resolution": "224",
            "madds": 300_774_272,
            "params": 3_504_872,
            "peak_act_bytes": (96 * 112 * 112 + 96 * 56 * 56) * 2,
            "peak_act_bytes_efficient": (16 * 112 * 112 + 24 * 56 * 56 + 112 * 112) * 2,
            **memory,
        },
        {
            "model": "mobilenet_v1",
            "width": 1.0,
            "resolution": "224",
            "madds": v1_madds,
            "params": v1_params,
            "peak_act_bytes": (32 + 64) * 112 * 112 * 2,
            "peak_act_bytes_efficient": (32 + 64) * 112 * 112 * 2,
            **memory,
        },
    ]
    covered = [b for b in budgets if b.spec.width == 1.0]
    results = check_rows(covered, rows)
    assert len(results) == 7 and all(r.status == "held" for r in results)
    assert {r.measured for r in results if r.limit.key == "max_peak_memory"} == {
        3_010_560,
        577_024,
        2_408_448,
    }


@pytest.fixture
def steady(monkeypatch):
    """Every timing judged stable: these tests are about limits, not about how busy the
    (shared) test machine is; the verdict has its own tests."""
    from mbprof.analysis.latency import harness

    monkeypatch.setattr(harness, "judge", lambda *a, **k: ("stable", ()))


@pytest.mark.usefixtures("steady")
def test_latency_limits_measured_once_with_headroom_and_environment(write, tmp_path):
    path = write(
        CONFIG + "max_latency = [\n"
        '  { limit = "60 s", threads = 1, min_time = "0.05 s", warmup = 1 },\n'
        '  { limit = "1 us", threads = 1, min_time = "0.05 s", warmup = 1, tolerance = "50%" },\n'
        "]\n"
    )
    junit = tmp_path / "junit.xml"
    result = run("check", path, "--format", "json", "--junit", junit)
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    held, exceeded = payload["tables"]["limits"]
    assert held["measured"] == exceeded["measured"] > 0  # one measurement, two limits
    assert held["status"] == "held" and held["headroom"] == pytest.approx(60_000 - held["measured"])
    assert exceeded["status"] == "exceeded" and exceeded["tolerance_pct"] == 50.0
    assert exceeded["headroom_pct"] == pytest.approx(100 * (0.001 - exceeded["measured"]) / 0.001)
    assert held["configuration"] == "mobilenet_v1 0.25@64 [cpu, eager, fp32, batch 1, 1 thread]"
    assert any(
        note.startswith("Latency measured on this machine's CPU") for note in payload["notes"]
    )
    assert "max_latency exceeded" in result.stderr and "tolerance 50.0%" in result.stderr
    (failure,) = ET.parse(junit).getroot().iter("failure")
    assert "max_latency exceeded" in failure.get("message")


def test_latency_settings_this_machine_cannot_run_exit_2_before_measuring(write):
    path = write(
        CONFIG + 'max_latency = { limit = "5 ms", backend = "onnxruntime", channels_last = true }\n'
    )
    result = run("check", path)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mbprof: error: {path}:6: budget 1, max_latency:")
    assert "channels_last applies to the eager and compile backends" in line


def test_latency_baseline_tolerance_through_saved_results(tmp_path):
    env = {
        "device": "cpu",
        "backend": "eager",
        "dtype": "fp32",
        "batch": 1,
        "threads": 2,
        "memory_format": "contiguous",
        "fuse_bn": False,
    }
    base = _results_file(tmp_path, latency_ms=10.0, **env).rename(tmp_path / "base.json")

    def check_with(ms, *options):
        fresh = _results_file(tmp_path, latency_ms=ms, **env)
        return run("check", "--baseline", base, "--results", fresh, "--format", "json", *options)

    def latency(result):
        return next(
            r for r in json.loads(result.stdout)["tables"]["limits"] if r["metric"] == "latency_ms"
        )

    ok = check_with(9.0)
    assert ok.exit_code == 0 and latency(ok)["status"] == "held"
    noisy = check_with(11.0)  # +10%, within the default 15%
    assert noisy.exit_code == 0 and latency(noisy)["status"] == "tolerated"
    assert latency(noisy)["headroom_pct"] == pytest.approx(-10.0)
    slow = check_with(12.0)  # +20%
    assert slow.exit_code == 1 and latency(slow)["status"] == "exceeded"
    assert "latency_ms regressed: measured 12.00 ms > baseline 10.00 ms" in slow.stderr
    allowed = check_with(12.0, "--tolerance", "latency=25%")
    assert allowed.exit_code == 0 and latency(allowed)["tolerance_pct"] == 25.0


def test_the_progress_bar_counts_configurations_not_requests(write, monkeypatch):
    # Two configurations, three requests (the first asks for two memory dtypes): the bar's
    # total is 2, and it moves once per configuration, to its total.
    from contextlib import contextmanager

    from mbprof.cli import _app as _progress

    seen = {"started": [], "done": []}

    class Recorder:
        def start(self, spec):
            seen["started"].append(spec.width)

        def phase(self, text):
            pass

        def done(self, row):
            seen["done"].append(row["madds"])

    @contextmanager
    def recording(total):
        seen["total"] = total
        yield Recorder()

    monkeypatch.setattr(_progress, "sweep_progress", recording)
    path = write(
        CONFIG
        + 'max_peak_memory = [ "50 KB", { limit = "100 KB", dtype = "fp32" } ]\n'
        + CONFIG.replace("0.25", "0.5")
        + 'max_madds = "20M"\n'
    )
    result = run("check", path)
    assert result.exit_code == 0, result.output
    assert seen["total"] == 2 == len(seen["done"])
    assert seen["started"] == [0.25, 0.5]
    assert seen["done"] == [MADDS, mobilenet_v1_by_hand(0.5, 64, 10)[0]]
