"""`mbprof compare` at search scale from the command line: grid ranges, the result cache
(byte-identical CSV, a warm run that imports no torch, `mbprof cache info|clear`, a folder
that cannot be written), and bad values of the new options, each one line and exit 2.

Figures: MobileNetV1 by hand (tests/cli/test_check.py).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.cli.test_check import mobilenet_v1_by_hand
from tests.conftest import assert_one_line_error

GRID = ["compare", "-m", "mobilenet_v1", "--classes", "10", "--no-latency", "--no-memory"]


@pytest.fixture
def cached(tmp_path, monkeypatch):
    """The result cache on, in a folder of the test's own."""
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MBPROF_NO_CACHE", raising=False)
    return tmp_path / "cache"


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_ranges_give_the_grid_they_say(run):
    result = run(*GRID, "--widths", "0.25:0.5:0.25,1.0", "--res", "32:48:16", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    grid = [(w, r) for w in ("0.25", "0.5", "1.0") for r in ("32", "48")]
    assert [(r["width"], r["resolution"]) for r in rows] == grid
    for row in rows:
        by_hand = mobilenet_v1_by_hand(float(row["width"]), int(row["resolution"]), 10)
        assert (int(row["madds"]), int(row["params"])) == by_hand


def test_a_repeated_sweep_is_read_back_byte_for_byte(run, cached):
    args = [*GRID, "--widths", "0.25,0.5", "--res", "32", "-f", "csv"]
    cold = run(*args)
    assert cold.exit_code == 0, cold.output
    info = json.loads(run("cache", "info", "-f", "json").stdout)
    assert info["tables"]["cache"] == [
        {
            "folder": str(cached / "results"),
            "entries": 2,
            "bytes": info["tables"]["cache"][0]["bytes"],
        }
    ]
    warm = run(*args)
    assert warm.stdout == cold.stdout
    assert run(*args, "--no-cache").stdout == cold.stdout

    # A whole process whose rows are all cached imports no torch (and answers at once).
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mbprof", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout == cold.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in process.stderr.splitlines()}
    assert "torch" not in imported and "fvcore" not in imported and "mbprof.api" in imported

    cleared = json.loads(run("cache", "clear", "-f", "json").stdout)
    assert cleared["tables"]["cache"][0]["removed"] == 2
    assert (
        json.loads(run("cache", "info", "-f", "json").stdout)["tables"]["cache"][0]["entries"] == 0
    )


def test_an_unwritable_cache_folder_is_one_warning(run, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path / "file"))
    monkeypatch.delenv("MBPROF_NO_CACHE", raising=False)
    result = run(*GRID, "--widths", "0.25,0.5", "--res", "32", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert len(_rows(result.stdout)) == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("mbprof: warning: cannot write the result cache in ")
    assert run("cache", "info").exit_code == 0


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--widths", "0.5:1.0:0"], ["--widths", "'0.5:1.0:0'", "step must be > 0"]),
        (["--widths", "0.5:1.0:-0.1"], ["--widths", "step must be > 0"]),
        (["--widths", "1.0:0.5:0.1"], ["--widths", "yields no value"]),
        (["--widths", "0.001:200:0.001"], ["--widths", "200,000 values", "at most 100,000"]),
        (["--widths", "0.5:x:0.1"], ["--widths", "not a range of numbers"]),
        (["--widths", "0.5:1.0"], ["--widths", "start:stop:step"]),
        (["--res", "96:256:0"], ["--res", "step must be > 0"]),
        (["--res", "96:256:0.5"], ["--res", "finite integers"]),
        (["--res", "16:64:16"], ["--res", "'16' is too small"]),
        (["--workers", "0"], ["--workers", "0 is too small", ">= 1"]),
        (["--workers", "two"], ["--workers", "'two' is not an integer"]),
        (["--no-cache", "--cache-latency"], ["--cache-latency", "turned off"]),
    ],
)
def test_bad_sweep_options_are_one_line(run, args, fragments):
    assert_one_line_error(run(*GRID, *args), *fragments)


def test_cache_actions(run):
    assert_one_line_error(run("cache", "empty"), "'empty'", "info, clear")
