"""Tables fit the terminal: at COLUMNS=80 and 120 no line is wider and no cell is cut
(rich's ellipsis); piped without COLUMNS, nothing is wrapped or cut."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mbprof.cli import app
from mbprof.render.console import fitted_columns, render_table_text
from mbprof.render.document import Document, Fact, Rows, Table

# Each command measures once for both widths (and for the test at 80 below).
pytestmark = pytest.mark.usefixtures("measure_once")

COMMANDS = [
    ("models",),
    ("profile", "mobilenet_v2", "--res", "96"),
    ("profile", "mobilenet_v2", "--res", "96", "--by", "type"),
    ("memory", "mobilenet_v2", "--res", "96"),
    (
        "compare",
        "--models",
        "mobilenet_v2,mobilenet_v3_large",
        "--widths",
        "0.5",
        "--res",
        "96",
        "--no-latency",
    ),
    ("check", "examples/budgets.toml"),
    ("cost", "--input", "28x28x3", "--filters", "64", "--kernel", "3"),
]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_line_fits(args, columns):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and "…" not in result.stdout
    assert max(map(len, lines)) <= columns, [line for line in lines if len(line) > columns]


def test_identifying_column_and_counts_kept_at_80():
    """Module paths whole; MAdds in M, params in K, the unit in the header (hand
    values: features.2.conv.0.0 of MobileNetV2 at 224, 16 -> 96 1x1 conv on 112x112:
    16 x 96 x 112 x 112 = 19,267,584 MAdds, 16 x 96 = 1,536 weights)."""
    result = CliRunner().invoke(app, ["profile", "mobilenet_v2"], env={"COLUMNS": "80"})
    row = next(line for line in result.stdout.splitlines() if "features.2.conv.0.0 " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == "features.2.conv.0.0" and "19.3" in cells and "1.5" in cells
    header = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert "MAdds" in header[0] and "(M)" in header[1] and "(K)" in header[1]
    assert "Left out at 80 columns: Groups, Stride, Kernel" in result.stdout


def test_pipe_without_columns_cuts_nothing():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": None})
    summary = "Depthwise-separable convolutions; 569M MAdds, 4.2M params at 1.0@224"
    assert summary in result.stdout and "Left out" not in result.stdout


def _table(width: int) -> tuple[list, str]:
    rows = Rows(
        [{"name": "a" * 30, "madds": 267_939_840, "bytes": 24_084_480, "n": 7, "kind": "x"}]
    )
    table = Table(
        "t",
        rows,
        headers={"name": "Name", "madds": "MAdds", "bytes": "Tensor B", "n": "N", "kind": "Kind"},
        kinds={"name": "text", "madds": "int", "bytes": "int", "n": "int", "kind": "text"},
        secondary=("kind",),
    )
    return fitted_columns(table, width)


def test_fitting_steps():
    columns, note = _table(200)
    assert [c.cells[0] for c in columns] == ["a" * 30, "267,939,840", "24,084,480", "7", "x"]
    assert note == ""
    # compact, two-line headers: 30 + 5 + 8 + 1 + 4 + 16 (padding, borders) = 64 > 62
    columns, note = _table(62)
    assert [(c.header, c.cells[0]) for c in columns] == [
        ("Name", "a" * 30),
        ("MAdds\n(M)", "267.9"),  # headers on two lines too
        ("Tensor\nKB", "24,084.5"),
        ("N", "7"),
    ]
    assert note.startswith("Left out at 62 columns: Kind ")
    columns, _ = _table(10)  # the first column stays, whatever the width
    assert [c.header for c in columns] == ["Name"]


def test_notes_wrap_with_an_indent():
    doc = Document("T", notes=["word " * 30])
    lines = render_table_text(doc, width=40).splitlines()
    assert lines[0].startswith("- word") and len(lines) > 1
    assert all(line.startswith("  ") and len(line) <= 40 for line in lines[1:])


def test_facts_that_are_all_text_fit_a_narrow_terminal():
    """A diff's facts (Before, After) are all text with spaces: at 30 columns they wrap."""
    doc = Document("T", [Fact(k, k.capitalize(), f"mobilenet_v2 {w}@96", "text") for k, w in
                         (("before", "1.0"), ("after", "0.75"))])  # fmt: skip
    text = render_table_text(doc, width=30)
    assert "mobilenet_" in text and "0.75@96" in text
