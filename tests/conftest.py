"""Shared fixtures: a CLI runner and a helper that checks mbprof's one-line error policy."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mbprof.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def run(runner):
    """run("profile", "mobilenet_v2", ...) -> Result (stdout and stderr kept apart)."""

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def assert_one_line_error(result, *fragments: str) -> None:
    """Exit code 2, one line on stderr naming the bad value, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mbprof: error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
