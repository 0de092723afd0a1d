"""Budget, baseline and results files are data: they never choose code to run.

A model written in such a file as an import path (``os:system``, ``mypkg.models:build``)
is refused with the file and line (or row) before anything is imported, unless the
person running ``mbprof check`` allows its module with ``--allow-import``. The
commands run from a temporary directory (one in a process of its own, as CI runs it), so
that ``touch marker`` and a module's import-time marker would land there if anything ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mbprof.api.checking import check_specs, measure_requests
from mbprof.checks.baseline import baseline_budgets
from mbprof.checks.budget_file import BudgetFileError, parse_budgets
from mbprof.checks.limits import import_allowed, parse_allow_import, refuse_row_imports
from mbprof.checks.matching import requests_for
from mbprof.cli import app
from mbprof.core.errors import MbprofError, UnknownModelError
from mbprof.frame.rows import spec_from_row
from tests.conftest import assert_one_line_error
from tests.support import ROOT
from tests.support.rows import config_row

REPO = ROOT

# A user model whose module leaves a file beside itself when it is imported.
# By hand: conv 3->4 1x1 with bias, 3 x 4 + 4 = 16; linear 4->2 with bias, 4 x 2 + 2 = 10.
TINY_PY = """
from pathlib import Path
from torch import nn

Path(__file__).with_name("imported").write_text(__name__)


def build(num_classes: int = 1000):
    return nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes)
    )
"""
TINY_PARAMS = 26

SYSTEM_TOML = (
    '[[budget]]\nmodel = "os:system"\nargs = { command = "touch marker" }\nmax_params = 1\n'
)
# A results row that would run the shell through os.system; ${IFS} is a space to the
# shell (the args column splits on spaces).
SYSTEM_ROW = config_row("os:system", args="command=touch${IFS}marker", params=1)
V2_ROW = {**SYSTEM_ROW, "model": "mobilenet_v2", "args": "", "params": 3_504_872}
V2_TOML = '[[budget]]\nmodel = "mobilenet_v2"\nmax_params = "4M"\n'


def mbprof(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "mbprof", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def in_process(cwd: Path, monkeypatch, *args: str):
    """The command in this process, run from ``cwd`` with ``cwd`` importable: a module the
    refusal let through would be imported (and leave its marker) as in a process of its own."""
    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(cwd))
    return CliRunner().invoke(app, list(args))


def assert_refused(out: subprocess.CompletedProcess, *fragments: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_rows(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps({"title": "Configurations", "tables": {"rows": rows}}))
    else:
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(str(r[k]) for k in header) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    return path


def user_package(root: Path, name: str) -> Path:
    """``name/__init__.py`` and ``name/sub/x.py`` (the tiny model); returns sub/x.py."""
    (root / name / "sub").mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "sub" / "__init__.py").write_text("")
    module = root / name / "sub" / "x.py"
    module.write_text(TINY_PY)
    return module


# --- the command line, as CI runs it (a whole process once; the other files in-process) --


def test_budget_file_import_path_runs_nothing(tmp_path):
    (tmp_path / "b.toml").write_text(SYSTEM_TOML)
    out = mbprof(tmp_path, "check", "b.toml")
    assert_refused(
        out,
        "b.toml:2: budget 1, model: 'os:system' is an import path",
        "a budget file may name registered models only (see mbprof models)",
        "to let it import code, pass --allow-import os",
    )
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("name", ["base.json", "base.csv"])
def test_baseline_import_path_runs_nothing(tmp_path, monkeypatch, name):
    write_rows(tmp_path / name, [V2_ROW, SYSTEM_ROW])
    out = in_process(tmp_path, monkeypatch, "check", "--baseline", name)
    assert_one_line_error(
        out,
        f"{name} row 2: model 'os:system' is an import path",
        "a results file may name registered models only",
        "--allow-import os",
    )
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("name", ["results.json", "results.csv"])
def test_results_file_import_path_is_refused(tmp_path, monkeypatch, name):
    # The budget names a registered model; the saved results carry an import path, which
    # --update-baseline would otherwise copy into a baseline that a later run imports.
    (tmp_path / "b.toml").write_text(V2_TOML)
    write_rows(tmp_path / name, [V2_ROW, SYSTEM_ROW])
    out = in_process(tmp_path, monkeypatch, "check", "b.toml", "--results", name)
    assert_one_line_error(
        out, f"{name} row 2: model 'os:system' is an import path", "--allow-import os"
    )
    assert not (tmp_path / "marker").exists()


def test_a_module_is_not_imported_when_not_allowed_and_prefixes_are_whole_names(
    tmp_path, monkeypatch
):
    evil = f"mypkg{uuid.uuid4().hex[:6]}"  # starts with "mypkg", is not inside it
    user_package(tmp_path, evil)
    (tmp_path / "b.toml").write_text(
        f'[[budget]]\nname = "mine"\nmodel = "{evil}.sub.x:build"\nmax_params = 30\n'
    )
    out = in_process(tmp_path, monkeypatch, "check", "b.toml", "--allow-import", "other,mypkg")
    assert_one_line_error(out, "b.toml:3: budget 1, model:", f"pass --allow-import {evil}.sub.x")
    assert not (tmp_path / evil / "sub" / "imported").exists()


TINY_TOML = f'[[budget]]\nmodel = "{{}}.sub.x:build"\nclasses = 2\nmax_params = {TINY_PARAMS}\n'


def _tiny_files(tmp_path: Path, name: str) -> Path:
    """A budget file and a baseline that name the tiny model of package ``name``."""
    module = user_package(tmp_path, name)
    (tmp_path / "b.toml").write_text(TINY_TOML.format(name))
    row = {**SYSTEM_ROW, "model": f"{name}.sub.x:build", "num_classes": 2, "args": ""}
    write_rows(tmp_path / "base.csv", [{**row, "params": TINY_PARAMS}])
    return module


def _held(stdout: str) -> list:
    limits = next(iter(json.loads(stdout)["tables"].values()))
    return [(r["status"], r["measured"]) for r in limits]


@pytest.mark.slow  # a whole process that measures; the refusals above run by default
def test_allowed_module_is_imported_and_measured(tmp_path):
    module = _tiny_files(tmp_path, "mypkg")
    flags = ["--allow-import", "other", "--allow-import", "mypkg"]  # repeatable
    out = mbprof(tmp_path, "check", "b.toml", "--baseline", "base.csv", "--format", "json", *flags)
    assert out.returncode == 0, out.stderr
    assert module.with_name("imported").read_text() == "mypkg.sub.x"
    assert _held(out.stdout) == [("held", TINY_PARAMS)] * 2


def test_a_wildcard_allows_any_module(tmp_path, monkeypatch):
    name = f"anypkg{uuid.uuid4().hex[:8]}"  # a fresh name: this process caches imports
    module = _tiny_files(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["check", "b.toml", "--baseline", "base.csv", "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--allow-import", "*"])
    assert result.exit_code == 0, result.output
    assert module.with_name("imported").read_text() == f"{name}.sub.x"
    assert _held(result.stdout) == [("held", TINY_PARAMS)] * 2


def test_plot_does_not_import_the_models_a_results_file_names(tmp_path, monkeypatch):
    name = f"plotted{uuid.uuid4().hex[:6]}"
    user_package(tmp_path, name)
    mine = {**V2_ROW, "model": f"{name}.sub.x:build", "params": 26, "madds": 3_000}
    write_rows(tmp_path / "r.csv", [{**V2_ROW, "madds": 300_774_272}, mine])
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(app, ["plot", "r.csv", "--x", "params", "--y", "madds"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / name / "sub" / "imported").exists()


def test_allow_import_option_values_and_help(tmp_path):
    (tmp_path / "b.toml").write_text(V2_TOML)
    for bad in ("a,,b", "my/pkg", "1pkg", "*x", ""):
        result = CliRunner().invoke(app, ["check", str(tmp_path / "b.toml"), "--allow-import", bad])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("mbprof: error: --allow-import: ")
        assert "is not a module or package name" in result.stderr
    command = typer.main.get_command(app).commands["check"]
    (option,) = [p for p in command.params if p.name == "allow_import"]
    assert "'*' allows any module, so any code the files name" in option.help


# --- the rules, and the Python API --------------------------------------------------------


def test_allowed_modules_are_whole_dotted_names():
    assert parse_allow_import(["a.b, c", "a.b", "*"]) == ("a.b", "c", "*")
    assert parse_allow_import("mypkg") == ("mypkg",)  # a lone string is one name
    assert import_allowed("mypkg", ["mypkg"]) and import_allowed("mypkg.sub.x", ["mypkg"])
    assert import_allowed("mypkg.models", ["mypkg.models"])
    assert not import_allowed("mypkgevil", ["mypkg"])
    assert not import_allowed("mypkg", ["mypkg.models"])  # a package's child, not the parent
    assert not import_allowed("os", [])
    assert import_allowed("anything.at.all", ["*"])


def _fresh_module(tmp_path: Path, monkeypatch) -> tuple[str, Path]:
    name = f"apimod{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(TINY_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, tmp_path / "imported"


def test_python_api_allows_nothing_by_default(tmp_path, monkeypatch):
    name, marker = _fresh_module(tmp_path, monkeypatch)
    text = f'[[budget]]\nmodel = "{name}:build"\nclasses = 2\nmax_params = 26\n'
    budgets = parse_budgets(text, "b.toml").budgets
    with pytest.raises(BudgetFileError, match=rf"^b.toml:2: budget 1, model: '{name}:build'"):
        check_specs(budgets)
    with pytest.raises(MbprofError, match=f"pass --allow-import {name}$"):
        measure_requests(requests_for(budgets))  # measuring without check_specs is guarded too
    assert not marker.exists()
    assert check_specs(budgets, allow_import=[name]) == list(budgets)
    (row,) = measure_requests(requests_for(budgets), allow_import=name).values()
    assert row["params"] == TINY_PARAMS and marker.read_text() == name


def test_python_api_rows_refused_by_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where os.system would touch the marker
    rows = [V2_ROW, SYSTEM_ROW]
    with pytest.raises(MbprofError, match=r"^r.csv row 2: model 'os:system' is an import path"):
        refuse_row_imports(rows, "r.csv")
    refuse_row_imports(rows, "r.csv", ["os"])
    budgets = baseline_budgets(rows, "base.json")
    with pytest.raises(MbprofError, match=r"^base.json row 2: model 'os:system'"):
        check_specs(budgets)
    assert not (tmp_path / "marker").exists()


def test_registered_names_are_looked_up_exactly_and_args_stay_literal():
    from mbprof.models import get_model_info

    for name in ("os.system", "__import__('os').system", "mobilenet_v2.__init__", "MobileNet_V2"):
        with pytest.raises(UnknownModelError):
            get_model_info(name)
    # A budget's args are TOML literals, a row's are key=value text: neither is evaluated.
    code = "__import__('os').system('false')"
    (budget,) = parse_budgets(
        f'[[budget]]\nmodel = "mobilenet_v2"\nargs = {{ x = "{code}" }}\nmax_params = 1\n'
    ).budgets
    assert budget.spec.kwargs == (("x", code),)
    spec = spec_from_row({**V2_ROW, "args": f"x={code} y=2 z=true"}, "r.csv row 1")
    assert spec.kwargs == (("x", code), ("y", 2), ("z", True))


def test_an_inline_budget_array_is_still_a_budget_file(tmp_path, monkeypatch):
    # No [[budget]] header to point at: the refusal names the file, and a budget file.
    monkeypatch.chdir(tmp_path)
    text = 'budget = [{ model = "os:system", args = { command = "touch marker" }, max_params = 1 }]'
    with pytest.raises(BudgetFileError, match=r"^b.toml: budget 1, model: .* a budget file may"):
        check_specs(parse_budgets(text, "b.toml").budgets)
    assert not (tmp_path / "marker").exists()
