"""Run a command line as a user would, for the pages (``docs.py``) and the measurements
(``measure.py``): one place that decides the environment every shown output comes from."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One result cache for every command a page runs, empty when the run starts: a page must
# show what a fresh machine prints, never rows a developer's own cache happened to hold.
_CACHE = tempfile.TemporaryDirectory(prefix="mbprof-docs-cache-")


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A plain terminal 100 columns wide, no colour, no CI step summary, a private cache."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}
    for name in ("FORCE_COLOR", "GITHUB_STEP_SUMMARY", "MBPROF_NO_CACHE", "MBPROF_WORKERS"):
        env.pop(name, None)
    env["MBPROF_CACHE_DIR"] = _CACHE.name
    # the project's own source first, as `pip install -e .` would give it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, **(extra or {})}


def words_of(line: str) -> list[str]:
    """``mbprof ...`` and ``python ...`` run with this interpreter; no shell."""
    words = shlex.split(line)
    if words[0] == "mbprof":
        return [sys.executable, "-m", "mbprof", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return words


def output_of(
    line: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: int = 1800,
    stderr: bool = True,
) -> tuple[int, str]:
    """Exit code and what the command printed: stdout, then stderr (as a terminal shows
    an error line after the output) unless ``stderr`` is False."""
    done = subprocess.run(
        words_of(line),
        cwd=cwd or ROOT,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + (done.stderr if stderr else "")


def tidy(text: str, cwd: Path | None = None) -> list[str]:
    """Lines without trailing blanks (rich pads tables to the width) and without the
    temporary folder a command ran in, so that a block is the same from run to run."""
    if cwd is not None:
        text = text.replace(str(cwd) + os.sep, "").replace(str(cwd), ".")
    return [row.rstrip() for row in text.rstrip("\n").splitlines()]
