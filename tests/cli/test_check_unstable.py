"""`mbprof check` with a latency measured unstably: neither held nor exceeded, exit 1
unless --allow-unstable. The verdict is set by the test (the machine's real load is the
verdict tests' subject)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.cli.test_check import CONFIG, run


@pytest.fixture
def shaky(monkeypatch):
    """Every timing judged unstable, for one reason."""
    from mbprof.analysis.latency import harness

    monkeypatch.setattr(harness, "judge", lambda *a, **k: ("unstable", ("spread 80% > 25%",)))


LATENCY_BUDGET = 'max_latency = { limit = "60 s", threads = 1, min_time = "0.05 s", warmup = 1 }\n'


@pytest.mark.usefixtures("shaky")
def test_an_unstable_latency_is_neither_held_nor_exceeded_and_fails(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text(CONFIG + LATENCY_BUDGET)
    junit = tmp_path / "junit.xml"
    result = run("check", path, "--format", "json", "--junit", junit)
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)["tables"]["limits"]
    assert row["status"] == "unstable" and row["measured"] > 0
    assert row["error"] == "spread 80% > 25%"
    assert "max_latency neither held nor exceeded" in result.stderr
    assert "unstably (spread 80% > 25%)" in result.stderr
    assert "1 of 1 limits not met" in result.stderr
    (error,) = ET.parse(junit).getroot().iter("error")
    assert error.get("type") == "unstable"


@pytest.mark.usefixtures("shaky")
def test_allow_unstable_passes_an_unstable_latency_with_a_warning(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text(CONFIG + LATENCY_BUDGET)
    junit = tmp_path / "junit.xml"
    result = run("check", path, "--allow-unstable", "--junit", junit, "--format", "github")
    assert result.exit_code == 0, result.output
    assert "mbprof: warning:" in result.stderr and "--allow-unstable" in result.stderr
    assert "::warning " in result.stdout and "max_latency unstable" in result.stdout
    root = ET.parse(junit).getroot()
    assert root.get("errors") == "0" and len(list(root.iter("skipped"))) == 1
