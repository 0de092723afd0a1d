"""The edges a new user meets: help that reads well at 80 and 120 columns, `plot --output
FILE.png`, `models` with a pattern that matches nothing, `profile --by`, folders made with
the user's umask."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.cli._app import rewrap
from tests.conftest import assert_one_line_error

COMMANDS = sorted(typer.main.get_command(app).commands)
# profile --by type and --max-depth 2 of one configuration: measured once.
pytestmark = pytest.mark.usefixtures("measure_once")
TYPE_PLACEHOLDER = re.compile(r"<(bool|str|int|float|file|dir|path|list\[[^>]*\]|[a-z]+\|[^>]*)>")


def help_text(args: list[str], columns: int) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_shows_flags_as_flags_and_values_by_name(command, columns):
    text = help_text(command, columns)
    assert not TYPE_PLACEHOLDER.search(text), TYPE_PLACEHOLDER.search(text).group()
    assert max(len(line) for line in text.splitlines()) <= columns


def _panel(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {title}"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    return [line[1:-1] for line in lines[start + 1 : end]]


@pytest.mark.parametrize("columns", [80, 120])
def test_command_summaries_wrap_where_the_width_ends(columns):
    # Each line of a summary is full: its continuation's first word would not have fitted.
    rows = _panel(help_text([], columns), "Commands")
    start = re.match(r" \S+\s+", rows[0]).end()
    for line, following in zip(rows, rows[1:], strict=False):
        if following[:start].strip():
            continue  # the next line starts another command
        width = len(line) - start - 1  # the description column, less its padding
        used = len(line[start:].rstrip())
        assert used + 1 + len(following[start:].split()[0]) > width, (line, following)
    text = " ".join(help_text([], 80).split())
    assert "machine: median and spread per batch" in text.replace("│ ", "").replace(" │", "")


def test_rewrap_joins_lines_and_keeps_paragraphs():
    assert rewrap("One line\n  and the next.\n\n\bkept\nas is\n\nLast") == (
        "One line and the next.\n\n\bkept\nas is\n\nLast"
    )


def test_plot_help_names_the_default_figure_and_how_to_choose_it():
    text = " ".join(help_text(["plot"], 120).split())
    assert "[default: (FRAME-Y-vs-X.png)]" in text  # typer's form for a computed default
    assert "--output FILE when FILE ends in .png, .svg or .pdf" in text


# --- plot --output FILE.png -------------------------------------------------------------

FRAME = (
    "model,width,depth,resolution,madds,top1\n"
    "mobilenet_v2,1.0,1.0,224,300774272,71.8\n"
    "mobilenet_v2,0.5,1.0,224,97133840,65.4\n"
    "mobilenet_v1,1.0,1.0,224,568740352,70.9\n"
)


@pytest.fixture
def sweep(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text(FRAME)
    return path


def test_plot_output_with_an_image_extension_is_the_figure(run, sweep, tmp_path):
    figure = tmp_path / "x.png"
    result = run("plot", str(sweep), "--output", str(figure), "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert result.stdout.splitlines()[0].startswith("label,model,")  # the table: terminal
    assert not (tmp_path / "sweep-top1-vs-madds.png").exists()
    svg = tmp_path / "x.svg"
    assert run("plot", str(sweep), "-o", str(svg)).exit_code == 0
    assert svg.read_bytes().startswith(b"<?xml")


def test_plot_output_and_figure_both_images_is_refused(run, sweep, tmp_path):
    result = run(
        "plot", str(sweep), "-o", str(tmp_path / "a.png"), "--figure", str(tmp_path / "b.png")
    )
    assert_one_line_error(result, "--output", "--figure", "give the figure's path once")
    assert not any(tmp_path.glob("*.png"))


def test_plot_output_with_an_image_mbprof_cannot_write_names_output(run, sweep, tmp_path):
    result = run("plot", str(sweep), "--output", str(tmp_path / "x.jpg"))
    assert_one_line_error(result, "--output: ", "has .jpg", ".png, .svg or .pdf")
    assert not (tmp_path / "x.jpg").exists()


def test_plot_output_of_a_table_still_gets_the_table(run, sweep, tmp_path):
    table, figure = tmp_path / "front.csv", tmp_path / "f.pdf"
    result = run("plot", str(sweep), "-o", str(table), "-f", "csv", "--figure", str(figure))
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(table)["label"].tolist() == ["0.5@224", "1.0@224"]
    assert figure.read_bytes()[:4] == b"%PDF"


# --- models -----------------------------------------------------------------------------


def test_models_with_a_pattern_that_matches_nothing_says_so(run):
    result = run("models", "zzz*")
    assert_one_line_error(result, "no registered model matches 'zzz*'", "mobilenet_v2")


def test_models_lists_without_pandas_or_torch():
    code = (
        "import sys; from mbprof.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['models', 'mobilenet_v3*']); "
        "assert r.exit_code == 0, r.output; assert 'mobilenet_v3_small' in r.stdout; "
        "print([m for m in ('torch', 'fvcore', 'pandas', 'numpy', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_models_csv_and_json_hold_every_column(run):
    frame = pd.read_csv(io.StringIO(run("models", "mobilenet_v2", "-f", "csv").stdout))
    assert frame["name"].tolist() == ["mobilenet_v2"] and "reference" in frame.columns
    payload = json.loads(run("models", "mobilenet_v*", "-f", "json").stdout)
    assert [m["name"] for m in payload["tables"]["models"]][:2] == ["mobilenet_v1", "mobilenet_v2"]


# --- profile --by -----------------------------------------------------------------------


def test_profile_by_type_and_by_module(run):
    result = run("profile", "mobilenet_v2", "--res", "64", "--by", "type", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert frame.columns[0] == "layer_type" and "depthwise conv 3x3" in set(frame["layer_type"])
    text = run("profile", "mobilenet_v2", "--res", "64", "--max-depth", "2").stdout
    assert "Per module, to depth 2" in text and "features.17" in text and "FLOPs" in text


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--by", "type", "--max-depth", "2"], ["--max-depth", "does not go with type"]),
        (["--max-depth", "0"], ["--max-depth", "0 is too small"]),
        (["--max-depth", "two"], ["--max-depth", "'two' is not an integer"]),
        (["--by", "blocks"], ["--by", "blocks"]),
    ],
)
def test_profile_grouping_errors_name_the_flag(run, args, fragments):
    assert_one_line_error(run("profile", "mobilenet_v2", *args), *fragments)


# --- folders: the user's umask ------------------------------------------------------------


def test_reproduce_subfolders_take_the_umask(tmp_path):
    from mbprof.report import folder

    out = tmp_path / "reports"
    old = os.umask(0o002)
    try:
        with folder.staged(out, {}) as staged:
            (staged / "figures").mkdir()
            (staged / "figures" / "a.png").write_bytes(b"\x89PNG")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(out) == 0o775 and mode(out / "figures") == 0o775  # not mkdtemp's 0o700
    assert mode(out / "figures" / "a.png") == 0o664
    assert sorted(p.name for p in out.iterdir()) == sorted([folder.MANIFEST, "figures"])
