"""Never lose what the user had: reproduce's folder, outputs that are devices or links,
two options naming one file, interrupted sweeps (Ctrl-C, SIGTERM), and user code that
calls sys.exit. Exit codes, signals and device files are tested on a real process."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mbprof.api.reporting as rep
import mbprof.report.folder as report_write
from mbprof.core import errors
from mbprof.core.errors import MbprofError
from mbprof.core.files import write_atomic
from mbprof.report.folder import MANIFEST
from mbprof.report.plan import MARKER
from tests.conftest import assert_one_line_error

COST = ["cost", "--input", "28x28x3", "--filters", "64", "--kernel", "3", "-f", "csv"]
HEADER = b"layer,kernel,channels,multiplications,weights,formula\n"

USER_MODELS = """
import os, sys, time
from torch import nn

class Ok(nn.Module):  # conv 3->4 3x3 (padding 1), no bias, and a linear 4->3
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))

class ExitForward(Ok):
    def forward(self, x):
        sys.exit(0)

class KbdForward(Ok):
    def forward(self, x):
        raise KeyboardInterrupt

class Odd(BaseException):
    pass

class OddForward(Ok):
    def forward(self, x):
        raise Odd("not an Exception")

def ok():
    return Ok()

def exit_forward():
    return ExitForward()

def kbd_forward():
    return KbdForward()

def odd_forward():
    return OddForward()

def exit_build():
    sys.exit(0)

def slow(width=1.0):  # width 2 waits in its builder, having said so
    if width > 1.0:
        open("in_builder", "w").close()
        time.sleep(120)
    return Ok()
"""


def mbprof(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mbprof", *args],
        cwd=cwd,
        capture_output=True,
        timeout=300,
        **kwargs,
    )


def one_error_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: error: "), stderr
    return lines[0]


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    (tmp_path / "um.py").write_text(USER_MODELS)
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(0)\n")
    return tmp_path


@pytest.fixture
def no_measuring(monkeypatch):
    """Fail the test if reproduce starts measuring: refusals must come first."""

    def measure(*_args, **_kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(rep, "measure_configs", measure)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# --- reproduce: only mbprof's own files are replaced or removed ----------------------


def test_reproduce_again_keeps_the_user_s_files_and_the_folders_beside_it(tmp_path):
    out = tmp_path / "reports"
    rep.reproduce(out, parts=(), latency=False)
    (out / "notes.txt").write_text("mine")
    (out / "drafts").mkdir()
    (out / "drafts" / "a.md").write_text("draft")
    for sibling in (".reports-old", "other"):  # the old swap deleted .reports-old
        (tmp_path / sibling).mkdir()
        (tmp_path / sibling / "x.txt").write_text(sibling)
    before = snapshot(tmp_path)
    rep.reproduce(out, parts=(), latency=False)
    after = snapshot(tmp_path)
    for name in ("reports/notes.txt", "reports/drafts/a.md", ".reports-old/x.txt", "other/x.txt"):
        assert after[name] == before[name]
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["README.md"]
    assert not list(out.glob(".mbprof-stage-*"))


@pytest.mark.slow  # whole mbprof processes
def test_reproduce_removes_only_unchanged_files_it_wrote(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    rep.reproduce(out, parts=("table3",), latency=False)
    (out / "table3.csv").write_text("my edit")  # changed since mbprof wrote it
    with monkeypatch.context() as patch:
        patch.setattr(
            rep, "measure_configs", lambda *a, **k: pytest.fail("measured before refusing")
        )
        with pytest.raises(MbprofError, match="table3.csv' was changed since mbprof wrote it"):
            rep.reproduce(out, parts=("table3",), latency=False)
    rep.reproduce(out, parts=(), latency=False)  # table3 no longer written
    assert not (out / "table3.md").exists()  # mbprof's, unchanged: removed
    assert (out / "table3.csv").read_text() == "my edit"  # the user's now: kept
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == ["README.md"]


def test_a_file_at_a_name_reproduce_writes_is_refused(tmp_path, no_measuring):
    out = tmp_path / "reports"
    (out).mkdir()
    (out / MANIFEST).write_text(json.dumps({"written_by": "mbprof", "files": {}}))
    (out / "table3.md").write_text("mine")
    with pytest.raises(MbprofError, match="table3.md' is not a file mbprof wrote"):
        rep.reproduce(out, parts=("table3",), latency=False)
    assert (out / "table3.md").read_text() == "mine"


@pytest.mark.parametrize(
    "payload",
    [
        {"written_by": "mbprof", "files": {"../victim.txt": []}},
        {"written_by": "someone", "files": {}},
        [1, 2],
    ],
)
def test_an_untrusted_manifest_is_refused(tmp_path, no_measuring, payload):
    out = tmp_path / "reports"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps(payload))
    (tmp_path / "victim.txt").write_text("safe")
    with pytest.raises(MbprofError, match="is not a manifest that mbprof wrote"):
        rep.reproduce(out, parts=(), latency=False)
    assert (tmp_path / "victim.txt").read_text() == "safe"


def test_reproduce_into_a_current_folder_of_other_files_is_refused_first(
    tmp_path, monkeypatch, run, no_measuring
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "setup.py").write_text("mine")
    assert_one_line_error(run("reproduce", "--out", ".", "--no-latency"), "--out", "did not write")
    assert sorted(os.listdir(tmp_path)) == ["setup.py"]


def test_reproduce_into_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rep.reproduce(".", parts=(), latency=False)
    (tmp_path / "notes.txt").write_text("n")
    rep.reproduce(".", parts=(), latency=False)
    assert sorted(os.listdir(tmp_path)) == [MANIFEST, "README.md", "notes.txt"]


def test_reproduce_and_write_atomic_use_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        rep.reproduce(tmp_path / "reports", parts=(), latency=False)
        write_atomic(tmp_path / "new.csv", "a\n")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "reports") == 0o775  # mkdtemp would give 0o700
    assert mode(tmp_path / "reports" / "README.md") == 0o664
    assert mode(tmp_path / "new.csv") == 0o664  # not a fixed 0o644
    (tmp_path / "private.csv").write_text("old")
    (tmp_path / "private.csv").chmod(0o600)
    write_atomic(tmp_path / "private.csv", "new")
    assert mode(tmp_path / "private.csv") == 0o600  # an existing file keeps its mode


def test_an_interrupted_reproduce_changes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    rep.reproduce(out, parts=(), latency=False)
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_write, "readme_markdown", interrupted)  # while writing the files
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(out, parts=(), latency=False)
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(tmp_path / "new", parts=(), latency=False)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "README.md", "notes.txt"]


def test_a_folder_from_before_manifests_keeps_the_user_s_files(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "README.md").write_text(MARKER + "\nold index\n")
    (out / "notes.txt").write_text("mine")
    rep.reproduce(out, parts=(), latency=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert "old index" not in (out / "README.md").read_text()
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == ["README.md"]


# --- outputs that are not regular files ----------------------------------------------


@pytest.mark.slow  # whole mbprof processes
def test_dev_null_and_dev_stdout_are_written_through(tmp_path):
    null = mbprof(*COST, "-o", "/dev/null", cwd=tmp_path)
    assert null.returncode == 0, null.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    piped = mbprof(*COST, "-o", "/dev/stdout", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stdout.startswith(HEADER), piped
    assert os.path.islink("/dev/stdout") or stat.S_ISCHR(os.lstat("/dev/stdout").st_mode)
    log = tmp_path / "log.txt"
    log.write_bytes(b"earlier line\n")
    with open(log, "ab") as appended:  # mbprof ... -o /dev/stdout >> log.txt
        result = subprocess.run(
            [sys.executable, "-m", "mbprof", *COST, "-o", "/dev/stdout"],
            stdout=appended,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    assert log.read_bytes().startswith(b"earlier line\n" + HEADER)


@pytest.mark.slow  # a whole mbprof process
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_dev_full_is_one_line(tmp_path):
    result = mbprof(*COST, "-o", "/dev/full", cwd=tmp_path)
    assert result.returncode == 2
    assert "'/dev/full': no space left on device" in one_error_line(result.stderr)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.slow  # whole mbprof processes
def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = mbprof(*COST, "-o", str(fifo), cwd=tmp_path)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert received and received[0].startswith(HEADER)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_link_s_target_is_replaced_never_the_link(tmp_path, run):
    target = tmp_path / "shared" / "cost.csv"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "cost.csv"
    link.symlink_to(target)
    assert run(*COST, "-o", str(link)).exit_code == 0
    assert link.is_symlink() and target.read_bytes().startswith(HEADER)
    assert sorted(p.name for p in target.parent.iterdir()) == ["cost.csv"]  # no temp left


# --- two options, one file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["compare", "--csv", "X", "--json", "X"], ["--csv", "--json"]),
        (["compare", "--csv", "X", "-o", "X"], ["--csv", "--output"]),
        (["compare", "--csv", "X", "--json", "LINK"], ["--csv 'X'", "--json 'LINK'"]),
        (["compare", "--csv", "X", "--markdown", "HARD"], ["--csv", "--markdown"]),
        (["compare", "--plot", "X.png", "--csv", "X.png"], ["--csv", "--plot"]),
        (["compare", "--accuracy", "IN.csv", "--csv", "IN.csv"], ["--accuracy", "--csv"]),
        (["check", "IN.toml", "--junit", "X", "-o", "X"], ["--output", "--junit"]),
        (["check", "IN.toml", "-o", "IN.toml"], ["BUDGETS", "--output"]),
        (["plot", "IN.csv", "-o", "IN.csv"], ["FRAME", "--output"]),
        (["plot", "IN.csv", "--figure", "f.png", "-o", "f.png"], ["--figure", "--output"]),
        (["memory", "mobilenet_v2", "--curve", "c.csv", "-o", "c.csv"], ["--curve", "--output"]),
        (["reproduce", "--out", "R", "-o", "R/README.md"], ["--out (README.md)", "--output"]),
    ],
)
def test_one_file_for_two_options_is_refused_before_any_work(
    tmp_path, monkeypatch, run, args, options
):
    monkeypatch.chdir(tmp_path)
    for name in ("X", "IN.toml", "IN.csv"):
        (tmp_path / name).write_text(name)
    (tmp_path / "LINK").symlink_to("X")
    os.link(tmp_path / "X", tmp_path / "HARD")
    (tmp_path / "R").mkdir()
    before = snapshot(tmp_path)
    assert_one_line_error(run(*args), *options)
    assert snapshot(tmp_path) == before


def test_devices_may_take_several_outputs():
    from mbprof.cli._options import check_outputs

    check_outputs({"--csv": Path("/dev/null"), "--json": Path("/dev/null")})


# --- interruptions -------------------------------------------------------------------


def _start_sweep(models_dir: Path, widths: str, *files: str) -> subprocess.Popen:
    outputs = [arg for name in files for arg in (f"--{name.split('.')[-1]}", name)]
    args = ["compare", "--models", "um:slow", "--widths", widths, "--res", "32"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mbprof", *args, "--no-latency", "--no-memory", *outputs],
        cwd=models_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240  # a loaded machine imports torch slowly; not a timing check
    while not (models_dir / "in_builder").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the builder never started"
        time.sleep(0.1)
    return process


@pytest.mark.slow  # whole mbprof processes
def test_ctrl_c_before_the_first_row_leaves_old_files_untouched(models_dir):
    (models_dir / "keep.csv").write_bytes(b"model,madds\nmine,1\n")
    (models_dir / "keep.json").write_bytes(b'{"mine": 1}\n')
    before = snapshot(models_dir)
    process = _start_sweep(models_dir, "2.0", "keep.csv", "keep.json")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"no file written" in stderr
    after = snapshot(models_dir)
    assert after["keep.csv"] == before["keep.csv"] and after["keep.json"] == before["keep.json"]


# SIGINT in a second process is slow-marked: tests/cli/test_latency.py sends a real SIGINT
# in-process too (run by .ci/run with -m slow, like every slow test).
@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)],
)
def test_a_signal_mid_sweep_keeps_the_finished_rows(models_dir, signum, code):
    process = _start_sweep(models_dir, "1.0,2.0", "rows.csv")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert b"interrupted after 1 of 2 configurations" in stderr
    with open(models_dir / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"], r["width"]) for r in rows] == [("um:slow", "1.0")]
    assert int(float(rows[0]["madds"])) == 4 * 3 * 9 * 32 * 32 + 4 * 3  # by hand


def test_the_cli_restores_the_signal_handlers(run):
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert run(*COST).exit_code == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# --- user code that tries to end the run ---------------------------------------------


@pytest.mark.slow  # whole mbprof processes
def test_a_model_that_exits_while_measured_gets_an_error_row(models_dir):
    names = ["um:ok", "um:exit_forward", "um:kbd_forward", "um:odd_forward"]
    result = mbprof(
        "compare", "--models", ",".join(names), "--res", "32", "--no-latency", "--no-memory",
        "--csv", "out.csv", "-f", "csv", cwd=models_dir,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr.replace(b"wrote out.csv\n", b""))
    assert "model 'um:exit_forward' called sys.exit(0)" in line and "3 of 4" in line
    with open(models_dir / "out.csv", newline="") as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    assert list(rows) == names  # every row kept, the good one measured
    assert int(float(rows["um:ok"]["madds"])) == 4 * 3 * 9 * 32 * 32 + 4 * 3
    assert "called sys.exit(0)" in rows["um:exit_forward"]["error"]
    assert "KeyboardInterrupt (not a Ctrl-C)" in rows["um:kbd_forward"]["error"]
    assert "Odd: not an Exception" in rows["um:odd_forward"]["error"]
    for name in names[1:]:
        assert f"model {name!r}" in rows[name]["error"]


EXITS = [("um:exit_build", "while being built"), ("exits_at_import:build", "while importing")]


@pytest.fixture
def user_modules(models_dir, monkeypatch):
    """models_dir as the current, importable folder of this process; its modules forgotten
    after the test (another test's um.py is another file)."""
    monkeypatch.chdir(models_dir)
    monkeypatch.syspath_prepend(str(models_dir))
    yield models_dir
    for name in ("um", "exits_at_import"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(("model", "where"), EXITS)
def test_a_model_that_exits_while_built_or_imported_is_one_line_in_process(
    user_modules, run, model, where
):
    result = run("profile", model, "--res", "32")
    assert_one_line_error(result, f"model {model!r} called sys.exit(0) {where}")
    assert not result.stdout


@pytest.mark.slow  # whole mbprof processes; in-process above
@pytest.mark.parametrize(("model", "where"), EXITS)
def test_a_model_that_exits_while_built_or_imported_is_one_line(models_dir, model, where):
    result = mbprof("profile", model, "--res", "32", cwd=models_dir)
    assert result.returncode == 2 and not result.stdout
    line = one_error_line(result.stderr)
    assert f"model {model!r} called sys.exit(0) {where}" in line


def test_check_stops_with_the_model_named_in_process(user_modules, run):
    budgets = user_modules / "budgets.toml"
    budgets.write_text('[[budget]]\nmodel = "um:exit_build"\nresolution = 32\nmax_madds = "1M"\n')
    result = run("check", str(budgets), "--allow-import", "um")
    assert_one_line_error(result, "model 'um:exit_build' called sys.exit(0)")


@pytest.mark.slow  # whole mbprof processes; in-process above
@pytest.mark.parametrize("model", ["um:exit_build", "um:exit_forward"])
def test_check_stops_with_the_model_named(models_dir, model):
    budgets = models_dir / "budgets.toml"
    budgets.write_text(f'[[budget]]\nmodel = "{model}"\nresolution = 32\nmax_madds = "1M"\n')
    result = mbprof("check", str(budgets), "--allow-import", "um", cwd=models_dir)
    assert result.returncode == 2, result  # it used to exit 0, having checked nothing
    assert f"model {model!r} called sys.exit(0)" in one_error_line(result.stderr)


def test_contained_passes_signals_and_exceptions_through(monkeypatch):
    for passing in (GeneratorExit, ValueError):
        with pytest.raises(passing), errors.contained("m", "testing"):
            raise passing()
    with pytest.raises(errors.UserCodeExit, match="'m' called sys.exit"):
        with errors.contained("m", "testing"):
            sys.exit(3)
    monkeypatch.setattr(errors, "_depth", 1)  # inside a run, after a real Ctrl-C:
    monkeypatch.setattr(errors, "_received", signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), errors.contained("m", "testing"):
        sys.exit(0)  # user code that turned the Ctrl-C into an exit still stops the run
