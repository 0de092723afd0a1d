"""Output that terminals and CI runners read: text from users' files cannot act there,
and a user's module cannot write into mbprof's results on stdout.

GitHub's runner reads workflow commands on stdout and stderr: `::cmd::` at the start of a
line (after leading whitespace) and the legacy `##[cmd]` anywhere in a line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET

import pytest

from mbprof.cli import _app
from mbprof.render.checks_view import annotation
from mbprof.render.document import md_text, safe_json, safe_text

# Everything a terminal or a log could act on, but the newline that ends a line.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

# A budget name written by someone who wants to forge or silence annotations, clear the
# screen, set the terminal's title, reorder text, split a Markdown cell and inject HTML.
HOSTILE = (
    "x\n::stop-commands::tok\n::warning file=a.py,line=1::forged\r\n  ::add-mask::y"
    " ##[error]legacy \x1b[2J\x1b]0;title\x07\x9b31m \u202eevil\u2028 a\\| pipe <img src=x>"
)
TOML_NAME = json.dumps(HOSTILE)  # a JSON string with \uXXXX escapes is a TOML basic string
CONFIG = "(mobilenet_v2 0.35@96)"


def _budget_files(tmp_path):
    """A budget whose name is HOSTILE, and saved figures (no measuring: fast) whose CPU
    name is hostile too (it reaches the notes)."""
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        f'[[budget]]\nname = {TOML_NAME}\nmodel = "mobilenet_v2"\nwidth = 0.35\n'
        'resolution = 96\nmax_madds = "1M"\nmax_latency = "100 ms"\n',
        encoding="utf-8",
    )
    results = tmp_path / "results.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "width", "depth", "resolution", "num_classes", "madds",
                     "latency_ms", "device", "cpu_model", "torch_version"])  # fmt: skip
    writer.writerow(["mobilenet_v2", 0.35, 1.0, 96, 1000, 11934128, 5.0, "cpu",
                     "cpu\n::error::fake ##[warning]w \x1b[31m", "2"])  # fmt: skip
    results.write_text(buffer.getvalue(), encoding="utf-8")
    return budgets, results


def _mbprof(*args, cwd, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "mbprof", *args],
        capture_output=True, text=True, encoding="utf-8", cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


def _runner_command(line: str) -> tuple[str, str, str] | None:
    """The V2 workflow command GitHub's runner reads on ``line``: (name, properties, data)."""
    text = line.lstrip()
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    name, _, props = text[2:end].partition(" ")
    return name, props, text[end + 2 :]


def _unescaped_pipes(line: str) -> int:
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


def _assert_inert(text: str, where: str) -> None:
    """No control character, no legacy command, no line that starts a command."""
    assert not UNSAFE.search(text), (where, UNSAFE.findall(text))
    assert "##[" not in text, where
    for line in text.splitlines():
        assert _runner_command(line) is None, (where, line)


def _assert_summary(summary: str, budgets) -> None:
    _assert_inert(summary, "summary")
    assert "<img" not in summary and "&lt;img" in summary  # no HTML from the file
    table = [line for line in summary.splitlines() if line.startswith("|")]
    header, _, row = table[:3]
    assert str(budgets) in row and "\\\\x1b" in row  # escaped, and shown
    assert _unescaped_pipes(row) == _unescaped_pipes(header)  # the cell did not split


@pytest.mark.parametrize("step_summary", [True, False], ids=["summary-file", "summary-stdout"])
def test_github_format_cannot_be_forged(tmp_path, step_summary, run, monkeypatch):
    budgets, results = _budget_files(tmp_path)
    summary_file = tmp_path / "summary.md"
    args = ("check", str(budgets), "--results", str(results), "--format", "github")
    if step_summary:  # in this process: what is written is the subject, not the process
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
        out = run(*args)
        code = out.exit_code
    else:  # a whole process: its own stdout and stderr
        out = _mbprof(*args, cwd=tmp_path, unset=("GITHUB_STEP_SUMMARY",))
        code = out.returncode
    assert code == 1, out.stderr
    # stdout: mbprof's own annotations (one per failed limit), then Markdown if no file.
    lines = out.stdout.splitlines()
    commands = [(line, _runner_command(line)) for line in lines if _runner_command(line)]
    assert len(commands) == 1, commands
    line, (name, props, data) = commands[0]
    assert name == "error"
    assert props == "file=budgets.toml,line=6,title=mbprof budget%3A max_madds exceeded"
    assert data.startswith("x%0A\\::stop-commands::tok%0A") and "%0D%0A" in data
    assert "##\\[error]legacy \\x1b[2J\\x1b]0;title\\x07\\x9b31m \\u202eevil\\u2028" in data
    assert data.endswith("by 10.93M (1093.4%25)")
    rest = "\n".join(x for x in lines if x != line)
    _assert_inert(rest, "stdout")
    # stderr: the recap, one line per failure, each starting with mbprof:
    _assert_inert(out.stderr, "stderr")
    recap = out.stderr.strip().splitlines()
    assert recap[0] == "mbprof: 1 of 2 limits not met"  # latency holds
    assert len(recap) == 2 and recap[1].startswith(f"mbprof: {budgets}:6: x\\n::stop")
    if step_summary:
        summary = summary_file.read_text(encoding="utf-8")
        assert summary.startswith("**mbprof check failed**")
        assert "Latency measured on this machine's CPU cpu\\\\n::error::fake" in summary
    else:
        assert not summary_file.exists()
        summary = rest
    _assert_summary(summary, budgets)


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_control_characters_never_reach_the_terminal(run, tmp_path, fmt):
    budgets, results = _budget_files(tmp_path)
    result = run("check", str(budgets), "--results", str(results), "--format", fmt)
    assert result.exit_code == 1, result.output
    _assert_inert(result.stdout, fmt)
    _assert_inert(result.stderr, "stderr")
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert len(rows) == 3 and len({len(r) for r in rows}) == 1  # one line a row
        assert rows[1][1] == f"{safe_text(HOSTILE)} {CONFIG}"
    if fmt == "json":  # the data are kept exactly: JSON escapes them itself
        payload = json.loads(result.stdout)
        assert payload["tables"]["limits"][0]["configuration"] == f"{HOSTILE} {CONFIG}"
        assert "\\u001b[2J" in result.stdout and "##\\u005berror]" in result.stdout
    if fmt == "markdown":
        assert "\\\\x1b[2J" in result.stdout  # shown escaped, not dropped
    if fmt == "table":
        assert "\\x1b[2J" in result.stdout


def test_junit_xml_holds_no_control_characters(run, tmp_path):
    budgets, results = _budget_files(tmp_path)
    junit = tmp_path / "out.xml"
    result = run("check", str(budgets), "--results", str(results), "--junit", str(junit))
    assert result.exit_code == 1
    text = junit.read_text(encoding="utf-8")
    assert not UNSAFE.search(text) and "##[" not in text
    case = ET.fromstring(text).find(".//testcase")
    assert case.get("classname") == f"{safe_text(HOSTILE)} {CONFIG}"


def test_budget_file_error_is_inert_in_annotation_and_error_line(run, tmp_path):
    bad = tmp_path / "bad.toml"
    key = json.dumps("k\n::stop-commands::t \x1b[2J ##[error]e")
    bad.write_text(f'[[budget]]\nmodel = "mobilenet_v2"\n{key} = 1\n', encoding="utf-8")
    result = run("check", str(bad), "--format", "github")
    assert result.exit_code == 2
    commands = [_runner_command(x) for x in result.stdout.splitlines()]
    assert len(commands) == 1 and commands[0][0] == "error", result.stdout
    assert not UNSAFE.search(result.stdout) and "##[" not in result.stdout
    _assert_inert(result.stderr, "stderr")
    assert len(result.stderr.strip().splitlines()) == 1


def test_error_line_from_user_code_is_one_inert_line(run, tmp_path, monkeypatch):
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "def build(**kwargs):\n"
        "    raise ValueError('boom ::error::forged \\x1b[2J \\x9b1m ##[warning]w \\u202e\\nnext')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run("profile", f"{name}:build", "--res", "32")
    assert result.exit_code in (1, 2), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbprof: error: "), result.stderr
    _assert_inert(result.stderr, "stderr")
    assert "boom \\::error::forged \\x1b[2J \\x9b1m ##\\[warning]w \\u202e" in lines[0]


# --- user code's stdout goes to stderr -----------------------------------------------------

NOISY = """
import torch
print("import-time print")


class Net(torch.nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.fc = torch.nn.Linear(4, num_classes)

    def forward(self, x):
        print("forward print")
        return self.fc(self.conv(x).mean((2, 3)))


def build(num_classes=1000, **kwargs):
    print("builder print")
    return Net(num_classes)
"""
PRINTS = ("import-time print", "builder print", "forward print")


def _expected_madds(side: int = 32, classes: int = 1000) -> int:
    """Hand count: a 3x3 conv 3 -> 4 channels without padding, then the classifier."""
    out = side - 2
    return out * out * 4 * 3 * 3 * 3 + 4 * classes


@pytest.mark.parametrize(
    "args",
    [
        ("profile", "noisy:build", "--res", "32", "--format", "json"),
        (
            "compare",
            "--models",
            "noisy:build",
            "--res",
            "32",
            "--no-latency",
            "--no-memory",
            "--format",
            "json",
        ),  # fmt: skip
    ],
    ids=["profile", "compare"],
)
@pytest.mark.slow  # two more processes; the same prints are checked in-process below
def test_user_prints_go_to_stderr_subprocess(tmp_path, args):
    (tmp_path / "noisy.py").write_text(textwrap.dedent(NOISY))
    out = _mbprof(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)  # the whole of stdout is the JSON document
    madds = (
        payload["facts"]["madds"]
        if args[0] == "profile"
        else payload["tables"]["configurations"][0]["madds"]
    )
    assert madds == _expected_madds()
    for text in PRINTS:
        assert text in out.stderr and text not in out.stdout


def test_user_prints_go_to_stderr_under_cli_runner(run, tmp_path, monkeypatch):
    stdout = sys.stdout
    name = f"noisy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NOISY))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run("profile", f"{name}:build", "--res", "32", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert all(text not in result.stdout for text in PRINTS)
    assert all(text in result.stderr for text in PRINTS)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # only the layers table
    assert sum(int(row["madds"]) for row in rows) == _expected_madds()
    assert _app._results == [] and sys.stdout is stdout  # all put back after the command


def test_help_and_version_stay_on_stdout(run):
    assert "Usage" in run("check", "--help").stdout
    assert run("--version").stdout.startswith("mbprof ")


# --- the functions themselves ------------------------------------------------------------


def test_safe_text_escapes_every_control_character():
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066, 0x200F]:
        text = safe_text(f"a{chr(code)}b")
        assert not UNSAFE.search(text) and text.startswith("a\\") and text.endswith("b")
    assert safe_text("\x1b[2J\n\t") == "\\x1b[2J\\n\\t"
    assert safe_text("\u202e") == "\\u202e"
    assert safe_text("c10::Error mod:build") == "c10::Error mod:build"  # mid-word: inert
    assert safe_text("::a") == "\\::a" and safe_text("x ::a") == "x \\::a"
    assert safe_text("x##[error]y") == "x##\\[error]y"
    for text in (HOSTILE, "a\\", "::::", "##[##["):
        assert safe_text(safe_text(text)) == safe_text(text)  # once is enough
    assert safe_text("a\nb\r", keep_newlines=True) == "a\nb\r"


def test_safe_json_keeps_the_data():
    raw = json.dumps({"k": "##[error]x"})
    assert "##[" not in safe_json(raw) and json.loads(safe_json(raw)) == {"k": "##[error]x"}


def test_markdown_text():
    assert md_text("a|b") == "a\\|b"
    assert md_text("a\\|b") == "a\\\\\\|b"  # the backslash cannot unescape the pipe
    assert md_text("<img src=x> <!-- x") == "&lt;img src=x> &lt;!-- x"
    assert md_text("measured <= limit, < 5") == "measured <= limit, < 5"


def test_annotation_escapes_data_and_properties():
    line = annotation("error", "50%\nnext\r", "a,b:c.toml", 3, "t:i,t\nle")
    assert line == "::error file=a%2Cb%3Ac.toml,line=3,title=t%3Ai%2Ct%0Ale::50%25%0Anext%0D"
