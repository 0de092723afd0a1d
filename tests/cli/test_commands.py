"""The command line as people use it: outputs in every format, files, errors, help."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest
import typer

from mbprof.cli import app
from tests.conftest import assert_one_line_error

COMMANDS = sorted(typer.main.get_command(app).commands)  # every registered command
# A configuration shown in several formats (profile's CSV and JSON, ...) is measured once.
pytestmark = pytest.mark.usefixtures("measure_once")


def test_help_does_not_import_heavy_libraries():
    # One fresh process asks every command for its help, in turn; after each, none of the
    # heavy libraries may have been imported.
    code = (
        "import sys; from mbprof.cli import app; from typer.testing import CliRunner\n"
        f"for command in {[[], *([c] for c in COMMANDS)]}:\n"
        "    r = CliRunner().invoke(app, command + ['--help']); assert r.exit_code == 0, r.output\n"
        "    heavy = [m for m in ('torch', 'fvcore', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "    print(command, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(COMMANDS) + 1
    assert all(line.endswith(" []") for line in lines), lines


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(run, command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example: mbprof " + command in result.stdout


def test_profile_table(run):
    result = run("profile", "mobilenet_v2", "--res", "224")
    assert result.exit_code == 0, result.stderr
    assert "300,774,272" in result.stdout and "3,504,872" in result.stdout
    assert "features.18.0" in result.stdout
    assert "Not counted" in result.stdout and "hardtanh_ x35" in result.stdout


def test_profile_csv_rows_sum_to_the_json_totals(run):
    as_csv = run("profile", "mobilenet_v2", "--width", "0.5", "--res", "96", "-f", "csv")
    as_json = run("profile", "mobilenet_v2", "--width", "0.5", "--res", "96", "-f", "json")
    layers = pd.read_csv(io.StringIO(as_csv.stdout))
    facts = json.loads(as_json.stdout)["facts"]
    assert layers["madds"].sum() == facts["madds"]
    assert layers["params"].sum() == facts["params"]
    assert {"path", "type", "kernel", "stride", "groups", "output_hw", "madds_share"} <= set(
        layers.columns
    )


def test_profile_markdown(run, tmp_path):
    out = tmp_path / "profile.md"
    result = run("profile", "mobilenet_v1", "--res", "128", "-f", "markdown", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert text.startswith("### mobilenet_v1 1.0@128")
    assert "| Module | Type |" in text and "| --- |" in text


def test_compare_sweep_writes_every_format(run, tmp_path):
    paths = {
        kind: tmp_path / f"sweep.{ext}"
        for kind, ext in (("csv", "csv"), ("json", "json"), ("markdown", "md"))
    }
    result = run(
        "compare",
        "--models",
        "mobilenet_v2,mobilenet_v1",
        "--widths",
        "0.35,0.5",
        "--res",
        "64,64x96",
        "--csv",
        str(paths["csv"]),
        "--json",
        str(paths["json"]),
        "--markdown",
        str(paths["markdown"]),
        "--no-latency",
    )
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(paths["csv"])
    assert len(frame) == 2 * 2 * 2
    assert list(frame["resolution"].astype(str).unique()) == ["64", "64x96"]
    assert {"madds", "params", "model", "width", "depth"} <= set(frame.columns)
    rows = json.loads(paths["json"].read_text())["tables"]["configurations"]
    assert [r["madds"] for r in rows] == frame["madds"].tolist()
    markdown = paths["markdown"].read_text()
    assert "| Model | Width | Res | MAdds (M) | Params (M) |" in markdown
    assert "| mobilenet_v2 | 0.35 | 64x96 |" in markdown
    assert "- Depth multiplier 1.0 for every row." in markdown


def test_compare_defaults_to_mobilenet_v2(run):
    result = run("compare", "--res", "64", "-f", "csv", "--no-latency")
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert frame["model"].tolist() == ["mobilenet_v2"]


def test_models_lists_the_registry(run):
    result = run("models", "-f", "csv")
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert {"mobilenet_v1", "mobilenet_v2"} <= set(frame["name"])


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["profile", "mobilenet_v2", "--width", "0"], ["--width", "'0'", "> 0"]),
        (["profile", "mobilenet_v2", "--width", "-1"], ["'-1'"]),
        (["profile", "mobilenet_v2", "--width", "nan"], ["'nan'"]),
        (["profile", "mobilenet_v2", "--width", "inf"], ["'inf'"]),
        (["profile", "mobilenet_v2", "--width", "abc"], ["'abc'"]),
        (["compare", "--widths", "0.5,,1.0"], ["empty item"]),
        (["profile", "mobilenet_v2", "--res", "31"], ["'31'", ">= 32"]),
        (["profile", "mobilenet_v2", "--res", "0"], ["'0'", ">= 32"]),
        (["profile", "mobilenet_v2", "--res", "22.5"], ["'22.5'"]),
        (["profile", "mobilenetv2"], ["'mobilenetv2'", "did you mean mobilenet_v2"]),
        (["compare", "--models", "mobilenet_v2,resnet"], ["'resnet'"]),
        (["profile", "mobilenet_v2", "--classes", "0"], ["--classes", ">= 1"]),
        (["profile", "mobilenet_v2", "--res", "60000"], ["60000", "memory available"]),
        (["profile", "mobilenet_v2", "--width", "300"], ["parameters", "memory available"]),
        (["profile", "mobilenet_v1", "--depth", "1.4"], ["no depth multiplier"]),
        (["profile", "mobilenet_v2", "--format", "xml"], ["xml"]),
        (["profile", "mobilenet_v2", "--arg", "foo=1"], ["'foo'"]),
        (["profile"], ["Missing argument 'MODEL'", "mbprof profile --help"]),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(run, args, fragments):
    assert_one_line_error(run(*args), *fragments)


def test_unwritable_output_is_refused_before_any_work(run, tmp_path):
    assert_one_line_error(
        run("profile", "mobilenet_v2", "-o", str(tmp_path / "missing" / "x.csv")), "does not exist"
    )
    assert_one_line_error(run("compare", "--csv", str(tmp_path)), "--csv", "directory")


def test_result_file_is_whole_or_absent(run, tmp_path):
    target = tmp_path / "result.json"
    failed = run(
        "profile", "mobilenet_v2", "--weights", str(tmp_path / "none.pt"), "-o", str(target)
    )
    assert failed.exit_code == 2 and not target.exists()
    ok = run("profile", "mobilenet_v2", "--res", "64", "-f", "json", "-o", str(target))
    assert ok.exit_code == 0
    assert json.loads(target.read_text())["facts"]["model"] == "mobilenet_v2"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary files left


def test_debug_shows_the_traceback(run):
    result = run("--debug", "profile", "mobilenet_v2", "--width", "0")
    assert result.exit_code != 0
    assert result.exception is not None


def test_python_dash_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "mbprof", "profile", "mobilenet_v2", "--width", "abc"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == "mbprof: error: --width: 'abc' is not a number; give a finite number > 0"
    )
