"""Baselines as limits (pure), GitHub workflow commands and JUnit XML (parsed back)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbprof.checks.baseline import (
    baseline_budgets,
    default_tolerances,
    parse_tolerance_items,
    tolerances_for,
)
from mbprof.checks.budget_file import parse_budgets
from mbprof.checks.limits import ERROR, EXCEEDED, HELD, TOLERATED
from mbprof.checks.matching import check_rows, requests_for
from mbprof.core.errors import MbprofError
from mbprof.frame.rows import identity_row
from mbprof.render.checks_view import annotation, github_annotations, junit_xml
from tests.checks.test_budgets import SPECS
from tests.support.rows import MNV2_MADDS, MNV2_PARAMS, config_row

ROW = config_row(
    madds=MNV2_MADDS,
    params=MNV2_PARAMS,
    peak_act_bytes=2_408_448,
    peak_act_bytes_efficient=1_204_224,
    mem_dtype="fp16",
    latency_ms=20.0,
    device="cpu",
    backend="eager",
    threads=2,
    batch=1,
    dtype="fp32",
)


def test_default_and_parsed_tolerances():
    assert default_tolerances() == {
        "madds": 0.0,
        "params": 0.0,
        "peak_act_bytes": 0.0,
        "peak_act_bytes_efficient": 0.0,
        "latency_ms": 15.0,
    }
    tol = tolerances_for(parse_tolerance_items(["latency=25%", "memory=1%"]))
    assert tol["latency_ms"] == 25.0 and tol["peak_act_bytes_efficient"] == 1.0
    assert tol["madds"] == 0.0
    for bad in (["latency"], ["speed=5%"], ["latency=5"]):
        with pytest.raises(MbprofError):
            tolerances_for(parse_tolerance_items(bad))


def test_tolerances_from_python_and_from_the_command_line_agree():
    assert parse_tolerance_items(["latency=25%", "madds=1%", "latency=30%"]) == {
        "latency": 30.0,  # given twice: the last one
        "madds": 1.0,
    }
    assert tolerances_for({"latency": 25}) == tolerances_for({"latency": "25%"})
    assert tolerances_for(None) == default_tolerances()
    both = tolerances_for({"memory": 2.5})
    assert both["peak_act_bytes"] == both["peak_act_bytes_efficient"] == 2.5
    for bad, words in (
        ({"speed": "5%"}, "tolerances: 'speed' is not a metric group"),
        ({"latency": "5"}, "'5' is not a percentage"),
        ({"latency": -1}, "-1 is not a percentage"),
        ({"latency": True}, "True is not a percentage"),
        ({"latency": float("nan")}, "nan is not a percentage"),
    ):
        with pytest.raises(MbprofError, match=words):
            tolerances_for(bad)


@settings(max_examples=40, deadline=None)
@given(SPECS, st.integers(1, 10**9))
def test_a_baseline_row_guards_the_configuration_it_names(spec, madds):
    (budget,) = baseline_budgets([{**identity_row(spec), "madds": madds}], "b.json")
    assert budget.spec == spec
    ((name, value),) = [(lim.name, lim.value) for lim in budget.limits]
    assert (name, value) == ("madds", madds)
    (result,) = check_rows([budget], [{**identity_row(spec), "madds": madds}])
    assert result.status == HELD and result.headroom == 0


def test_each_saved_figure_becomes_a_limit_with_its_tolerance():
    (budget,) = baseline_budgets([ROW], "base.json")
    names = [(lim.name, lim.value, lim.tolerance_pct) for lim in budget.limits]
    assert names == [
        ("madds", 300_774_272, 0.0),
        ("params", 3_504_872, 0.0),
        ("peak_act_bytes", 2_408_448, 0.0),
        ("peak_act_bytes_efficient", 1_204_224, 0.0),
        ("latency_ms", 20.0, 15.0),
    ]
    assert all(isinstance(lim.value, int) for lim in budget.limits[:4])
    latency = budget.limits[-1]
    assert latency.setting("threads") == 2 and latency.setting("backend") == "eager"
    # one measurement covers the whole row
    (request,) = requests_for([budget])
    assert request.memory == (("dtype", "fp16"), ("chunks", None))
    assert dict(request.latency)["threads"] == 2


def test_fresh_rows_against_a_baseline():
    budgets = baseline_budgets([ROW], "base.json")
    fresh = dict(ROW, madds=ROW["madds"] + 1, latency_ms=22.0, peak_act_bytes=2_000_000)
    by_name = {r.limit.name: r for r in check_rows(budgets, [fresh])}
    assert by_name["madds"].status == EXCEEDED and by_name["madds"].headroom == -1
    assert "madds regressed" in by_name["madds"].message
    assert by_name["madds"].where == "base.json row 1"
    assert by_name["params"].status == HELD and by_name["params"].headroom == 0
    assert by_name["peak_act_bytes"].status == HELD  # smaller is fine
    assert by_name["peak_act_bytes"].headroom == 408_448
    assert by_name["latency_ms"].status == TOLERATED  # +10% within 15%
    assert by_name["latency_ms"].headroom_pct == pytest.approx(-10.0)


def test_baseline_rows_without_figures_and_bad_rows():
    with pytest.raises(MbprofError, match="no configuration with figures"):
        baseline_budgets([{"model": "mobilenet_v2", "resolution": 224, "error": "boom"}], "b.json")
    with pytest.raises(MbprofError, match="b.json row 1: no 'resolution'"):
        baseline_budgets([{"model": "mobilenet_v2", "madds": 5}], "b.json")
    with pytest.raises(MbprofError, match="b.json row 1: no 'model' column"):
        baseline_budgets([{"madds": 5}], "b.json")
    with pytest.raises(MbprofError, match="b.json row 1: madds 'many' is not a number"):
        baseline_budgets([dict(ROW, madds="many")], "b.json")


def test_annotation_escaping():
    # GitHub's workflow-command escapes: % \r \n in data; also : and , in properties
    line = annotation("error", "50% over\nnext", "dir/a,b:c.toml", 7, "t: x")
    assert line == "::error file=dir/a%2Cb%3Ac.toml,line=7,title=t%3A x::50%25 over%0Anext"
    assert annotation("warning", "m") == "::warning::m"


TEXT = """\
[[budget]]
model = "mobilenet_v2"
max_madds = "310M"
max_params = "3.5M"
max_latency = { limit = "19 ms", threads = 2 }
max_peak_memory = "1 MB"
"""


def test_github_annotations_and_junit_statuses():
    row = dict(ROW, peak_act_bytes=None, error="RuntimeError: boom")
    results = check_rows(parse_budgets(TEXT, "b.toml"), [row])
    assert [r.status for r in results] == [HELD, EXCEEDED, TOLERATED, ERROR]
    lines = github_annotations(results).splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::warning", "::error"]
    assert [line.split("line=")[1].split(",")[0] for line in lines] == ["4", "5", "6"]
    assert "could not be measured: RuntimeError: boom" in lines[2]

    root = ET.fromstring(junit_xml(results, seconds=1.5))
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("errors") == "1"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "b.toml"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "max_madds",
        "max_params",
        "max_latency [cpu, eager, fp32, batch 1, 2 threads]",
        "max_peak_memory [fp16, materialized]",
    ]
    assert all(c.get("classname") == "mobilenet_v2 1.0@224" for c in cases)
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert cases[1].find("failure").get("type") == "exceeded"
    assert "within tolerance" in cases[2].find("system-out").text
    assert cases[3].find("error").text == "RuntimeError: boom"


def test_annotation_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = tmp_path.resolve() / "ci" / "budgets.toml"
    assert annotation("error", "m", str(inside), 3) == "::error file=ci/budgets.toml,line=3::m"
    assert annotation("error", "m", "./budgets.toml") == "::error file=budgets.toml::m"
    assert annotation("error", "m", "/elsewhere/b.toml") == "::error file=/elsewhere/b.toml::m"


def test_terminal_table_keeps_square_brackets_in_cells():
    from mbprof.render.checks_view import check_document
    from mbprof.render.console import render_table_text

    text = '[[budget]]\nmodel = "mobilenet_v2"\nmax_peak_memory = "4 MB"\n'
    results = check_rows(parse_budgets(text, "b.toml"), [ROW])
    out = render_table_text(check_document(results, "t"), width=200)
    assert "mobilenet_v2 1.0@224 [fp16, materialized]" in out
