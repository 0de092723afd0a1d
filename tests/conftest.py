"""Shared fixtures: every test seeded, a CLI runner, a helper that checks mbprof's one-line error policy, and
the counts of a configuration computed once per test run.

pytest-xdist runs the suite on every core, one process each: each of them (and the mbprof
processes the tests start) gets one intra-op thread, so that they do not fight over the
cores. Tests that are about threads set their own counts.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported anywhere
# The suite starts many Python processes (pytest-xdist's workers, whole `mbprof` runs): where
# PYTHONDONTWRITEBYTECODE is set, each would compile mbprof's sources again (about 0.2 s of CPU
# a process). Their bytecode goes to a cache of the tests' own instead, outside the source tree.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.pycache_prefix = os.environ.setdefault(
        "PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "mbprof-tests-pycache")
    )
    sys.dont_write_bytecode = False
# `compare` analyses in this process and reads no result cache unless a test asks: tests
# that replace a function in this process would otherwise see a worker's or a cached row.
os.environ.setdefault("MBPROF_WORKERS", "1")
os.environ.setdefault("MBPROF_NO_CACHE", "1")
# pytest-xdist's workers get COLUMNS=80, and tables fit COLUMNS: a test that is about a
# width sets its own.
os.environ.pop("COLUMNS", None)

import pytest  # noqa: E402
from hypothesis import settings
from typer.testing import CliRunner

from mbprof.cli import app  # noqa: E402

# A test run started with SIGINT ignored (under nohup, or as `cmd &` in a script) would pass
# that on to every mbprof process it starts, and the Ctrl-C tests would wait for nothing:
# restore Python's own handler, as an interactive run has (its children then start with the
# default disposition).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Property tests draw their examples from a fixed seed too: a run in CI fails only where a
# run here fails (hypothesis's own per-test settings still set the number of examples).
settings.register_profile("mbprof", derandomize=True, deadline=None, database=None)
settings.load_profile("mbprof")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global random state, whatever ran before it in its
    worker: random weights (a model's initialisation) and inputs are the same on every
    run (tests/analysis/latency/test_exports.py failed for one state in about 60)."""
    import random

    import torch

    random.seed(0)
    torch.manual_seed(0)


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


def counted(model: str, width: float = 1.0, resolution=224, **kwargs):
    """``mbprof.profile`` without the memory analysis, once per configuration and test
    process: the counts are deterministic, and several tests check one configuration
    (224, (224, 224) and a left-out width are one configuration)."""
    side = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    return _counted(model, float(width), side, **kwargs)


@functools.cache
def _counted(model: str, width: float, resolution: tuple[int, int], **kwargs):
    from mbprof.api import profile

    return profile(model, width=width, resolution=resolution, with_memory=False, **kwargs)


@pytest.fixture(scope="module")
def measure_once():
    """``mbprof.api.single.measure`` (what profile, compare and check build, trace and count
    with) memoized for one module: its tests that render one configuration several ways (at
    two widths, in two formats) measure it once. Only for modules that replace nothing below."""
    from mbprof.api import single

    real, seen = single.measure, {}

    def measure(spec, memories=(), *, weights=None, batch=1, engine="fvcore", **kwargs):
        key = (spec, tuple(memories), weights, batch, engine)
        if key not in seen:
            seen[key] = real(spec, memories, weights=weights, batch=batch, engine=engine, **kwargs)
        return seen[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(single, "measure", measure)
        yield
