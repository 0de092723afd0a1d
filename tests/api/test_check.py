"""``mbprof.check`` from Python: budgets held and exceeded, baselines written and guarded,
import paths refused, the progress callbacks once per configuration.

The configuration is MobileNetV1 0.25 at 64x64 with 10 classes, whose counts
tests/test_check_cli.py computes by hand from the architecture.
"""

from __future__ import annotations

import json
import uuid

import pytest

import mbprof
from mbprof.api import prepare_check
from mbprof.checks.limits import BudgetFileError
from mbprof.core.errors import MbprofError
from tests.checks.test_data_files_run_no_code import TINY_PARAMS, TINY_PY
from tests.cli.test_check import CONFIG, MADDS, PARAMS

# Peak activations by hand (fp16, 2 bytes): the first pointwise conv, 8 channels in and
# 16 out at 32x32.
PEAK_FP16 = (8 + 16) * 32 * 32 * 2


def _budgets(tmp_path, text: str):
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return path


def test_a_budget_held_and_exceeded_from_python(tmp_path):
    path = _budgets(tmp_path, CONFIG + 'max_madds = "3.4M"\nmax_params = "215K"\n')
    outcome = mbprof.check(path)
    held, exceeded = outcome.results
    assert (held.limit.key, held.status, held.measured) == ("max_madds", "held", MADDS)
    assert held.headroom == 3_400_000 - MADDS == 68_928
    assert (exceeded.limit.key, exceeded.status) == ("max_params", "exceeded")
    assert exceeded.measured == PARAMS and exceeded.headroom == 215_000 - PARAMS == -642
    assert exceeded.where == f"{path}:7"
    assert not outcome.passed and outcome.failures == (exceeded,)
    assert outcome.measured and outcome.seconds >= 0
    (row,) = outcome.rows
    assert (row["madds"], row["params"]) == (MADDS, PARAMS)
    assert outcome.baseline_rows == outcome.rows  # a new baseline: the budget file's rows


def test_progress_is_reported_once_per_configuration(tmp_path):
    # Two configurations; the first asks for two memory settings (two rows, one build).
    path = _budgets(
        tmp_path,
        CONFIG
        + 'max_peak_memory = [ "50 KB", { limit = "100 KB", dtype = "fp32" } ]\n'
        + CONFIG.replace("0.25", "0.5")
        + 'max_madds = "20M"\n',
    )
    run = prepare_check(path)
    assert len(run.requests) == 3 and run.configurations == 2
    started, phases, done = [], [], []
    outcome = run.run(on_start=started.append, on_phase=phases.append, on_done=done.append)
    assert [spec.width for spec in started] == [0.25, 0.5]
    assert [len(rows) for rows in done] == [2, 1]
    assert "counting" in phases and "memory" in phases
    fp16, fp32, madds = outcome.results
    assert (fp16.measured, fp32.measured) == (PEAK_FP16, 2 * PEAK_FP16)
    assert madds.status == "held" and outcome.passed


def test_saved_results_are_judged_without_measuring(tmp_path):
    row = {"model": "mobilenet_v1", "width": 0.25, "resolution": "64", "num_classes": 10}
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"tables": {"configurations": [{**row, "madds": MADDS}]}}))
    path = _budgets(tmp_path, CONFIG + f"max_madds = {MADDS - 1}\n")
    run = prepare_check(path, results=saved)
    assert run.configurations == 0
    started = []
    outcome = run.run(on_start=started.append)
    (result,) = outcome.results
    assert result.status == "exceeded" and result.headroom == -1
    assert started == [] and not outcome.measured


def test_a_baseline_written_then_guarded_with_tolerances(tmp_path):
    budgets = _budgets(tmp_path, CONFIG + 'max_params = "1M"\n')
    base = tmp_path / "base.json"
    first = mbprof.check(budgets, baseline=base, update_baseline=True)
    assert first.passed
    mbprof.write_baseline(first, base)
    saved = json.loads(base.read_text())
    (row,) = saved["tables"]["configurations"]
    assert (row["madds"], row["params"]) == (MADDS, PARAMS)
    # The saved figures claim 1,000 fewer MAdds than the model has: a regression.
    row["madds"] = MADDS - 1000
    base.write_text(json.dumps(saved))
    outcome = mbprof.check(baseline=base)
    by_name = {r.limit.name: r for r in outcome.results}
    assert by_name["madds"].status == "exceeded" and by_name["madds"].headroom == -1000
    assert by_name["params"].status == "held" and not outcome.passed
    # 1,000 / 3,331,072 is 0.03%: a 1% tolerance, as a percentage or a number, lets it pass.
    for tolerance in ("1%", 1.0):
        tolerated = mbprof.check(baseline=base, tolerances={"madds": tolerance})
        assert tolerated.passed
        assert {r.limit.name: r.status for r in tolerated.results}["madds"] == "tolerated"
    # Rewriting it: the baseline's own regressions no longer decide.
    rewrite = mbprof.check(baseline=base, update_baseline=True)
    assert rewrite.passed and rewrite.deciding == () and len(rewrite.results) == 2
    assert rewrite.baseline_rows[0]["madds"] == MADDS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give budgets, baseline, or both"),
        ({"budgets": "b.toml", "update_baseline": True}, "update_baseline needs baseline"),
        (
            {"baseline": "nope.json"},
            "baseline: 'nope.json' does not exist; create it with update_baseline (and budgets)",
        ),
        ({"baseline": "b.json", "tolerances": {"speed": "5%"}}, "tolerances: 'speed' is not"),
        ({"baseline": "b.json", "tolerances": {"latency": "5"}}, "'5' is not a percentage"),
        ({"baseline": "b.json", "tolerances": {"latency": -1}}, "-1 is not a percentage"),
        ({"budgets": "b.toml", "allow_import": ["not a module"]}, "allow_import: 'not a"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MbprofError) as caught:
        mbprof.check(**kwargs)
    assert message in str(caught.value)


def test_an_import_path_is_refused_unless_its_module_is_allowed(tmp_path, monkeypatch):
    name = f"checkapi{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TINY_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _budgets(tmp_path, f'[[budget]]\nmodel = "{name}:build"\nclasses = 2\nmax_params = 26\n')
    with pytest.raises(BudgetFileError, match=rf"budget 1, model: '{name}:build' is an import"):
        mbprof.check(path)
    with pytest.raises(BudgetFileError):
        mbprof.check(path, allow_import=[f"{name}x"])  # another module, not a package of it
    assert not (tmp_path / "imported").exists()
    outcome = mbprof.check(path, allow_import=name)
    (result,) = outcome.results
    assert result.measured == TINY_PARAMS and result.status == "held"
    assert (tmp_path / "imported").read_text() == name


def test_saved_results_with_an_unstable_latency_are_not_judged(tmp_path):
    import pandas as pd

    from mbprof.checks.limits import failing

    saved = tmp_path / "results.csv"
    row = dict(model="mobilenet_v1", width=0.25, resolution=64, num_classes=10, madds=MADDS)
    rows = [
        {
            **row,
            "latency_ms": 5.0,
            "latency_verdict": "unstable",
            "latency_reasons": "spread 40% > 25%",
        },
        {**row, "resolution": 96, "latency_ms": 5.0, "latency_verdict": "stable"},
    ]
    pd.DataFrame(rows).to_csv(saved, index=False)
    budgets = (
        CONFIG + 'max_latency = "1 ms"\n' + CONFIG.replace("64", "96") + 'max_latency = "1 ms"\n'
    )
    outcome = mbprof.check(_budgets(tmp_path, budgets), results=saved)
    unstable, exceeded = outcome.results
    assert (unstable.status, unstable.measured, unstable.reasons) == (
        "unstable",
        5.0,
        "spread 40% > 25%",
    )
    assert "neither held nor exceeded" in unstable.message
    assert exceeded.status == "exceeded"  # a stable figure is judged as before
    assert not outcome.passed and outcome.failures == (unstable, exceeded)
    assert failing(outcome.results, allow_unstable=True) == [exceeded]


def test_a_refused_budget_file_loads_no_torch(tmp_path):
    # Reading and refusing a data file is instant: torch is imported only to measure.
    import subprocess
    import sys
    from pathlib import Path

    budgets = _budgets(tmp_path, '[[budget]]\nmodel = "os:system"\nmax_params = 1\n')
    code = (
        "import sys\nfrom mbprof.api import check\nfrom mbprof.core.errors import MbprofError\n"
        f"try:\n    check({str(budgets)!r})\nexcept MbprofError as exc:\n    print(exc)\n"
        "print(sorted({'torch', 'fvcore', 'matplotlib'} & set(sys.modules)))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120
    )
    lines = out.stdout.splitlines()
    assert "'os:system' is an import path" in lines[0], out.stderr
    assert lines[-1] == "[]", out.stdout
