"""Worker processes on this machine (loky): the same rows as in this process, in the
sweep's order; a worker that dies fills only its own row; a model registered in this
process only is analysed there too; Ctrl-C ends the workers and keeps the finished rows.

Each test starts worker processes that import torch (seconds each): slow-marked, run by
.ci/run with -m slow. The order, failure and Ctrl-C logic is covered in this process by
tests/api/test_sweep_phases.py. Figures: MobileNetV1 by hand.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from mbprof.api import make_specs, prepare_compare
from mbprof.api.executors import LocalPool
from tests.cli.test_check import mobilenet_v1_by_hand
from tests.cli.test_files_and_signals import USER_MODELS
from tests.support.tiny_models import tiny_madds, tiny_models  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

# Ok: conv 3->4 3x3 (padding 1, no bias), then a linear 4->3 (tests/cli/test_files_and_signals)
USER = (
    USER_MODELS
    + """
from pathlib import Path


def fast(num_classes=1000):
    Path("fast_built").touch()
    return Ok()


def dies(num_classes=1000):
    os._exit(3)  # a crash no exception handler sees (a segfault, the OOM killer)


def slow(num_classes=1000):
    while not Path("fast_built").exists():
        time.sleep(0.05)
    time.sleep(2)  # the fast row is counted and back in the sweep's process meanwhile
    Path("in_builder").touch()
    time.sleep(120)
    return Ok()
"""
)


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    (tmp_path / "workerum.py").write_text(USER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _rows(specs, workers):
    run = prepare_compare(specs, with_memory=True, accuracy=False, workers=workers)
    return list(run.rows())


def test_workers_give_the_rows_of_this_process_in_the_sweep_s_order():
    specs = make_specs("mobilenet_v1", [1.0, 0.25, 0.75, 0.5], resolutions=[32, 64], num_classes=10)
    here, pooled = _rows(specs, 1), _rows(specs, 2)
    assert pooled == here
    assert [(r["width"], r["input_h"]) for r in pooled] == [
        (s.width, s.resolution[0]) for s in specs
    ]
    for row in pooled:
        assert (row["madds"], row["params"]) == mobilenet_v1_by_hand(
            row["width"], row["input_h"], 10
        )


def test_a_worker_that_dies_fills_only_its_row(user_models):
    specs = make_specs(
        ["workerum:fast", "workerum:dies", "mobilenet_v1"], resolutions=[32], num_classes=10
    )
    fast, dead, v1 = _rows(specs, 2)
    assert fast["madds"] == tiny_madds(32) and "error" not in fast
    assert dead["error"].startswith("TerminatedWorkerError: ") and "madds" not in dead
    assert (v1["madds"], v1["params"]) == mobilenet_v1_by_hand(1.0, 32, 10)


def test_a_model_registered_in_this_process_reaches_the_workers(tiny_models):  # noqa: F811
    rows = _rows(make_specs(tiny_models, resolutions=[32, 48]), 2)
    assert [r["madds"] for r in rows] == [tiny_madds(32), tiny_madds(48)] * 2


def test_ctrl_c_ends_the_workers_and_keeps_the_finished_rows(user_models):
    process = subprocess.Popen(
        [sys.executable, "-m", "mbprof", "compare", "--models", "workerum:fast,workerum:slow",
         "--res", "32", "--no-latency", "--no-memory", "--workers", "2", "--csv", "rows.csv"],
        cwd=user_models, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 240  # a loaded machine imports torch slowly; not a timing check
    while not (user_models / "in_builder").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the slow builder never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)  # the slow worker sleeps 120 s: not waited for
    assert process.returncode == 130, stderr
    assert b"interrupted after 1 of 2 configurations" in stderr
    with open(user_models / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["workerum:fast"]
    assert int(rows[0]["madds"]) == tiny_madds(32)


def pid_of(_task: int) -> int:
    time.sleep(0.05)
    return os.getpid()


def test_the_sweep_s_process_works_beside_its_workers():
    # Two workers asked for: this process is one of them, one more process is started.
    helped = dict(LocalPool(2).run(pid_of, list(range(8)), here=[True] * 8))
    assert sorted(helped) == list(range(8))
    assert os.getpid() in helped.values()  # it starts at once; the worker imports torch first
    # Tasks this process may not run (users' models) all go to the workers.
    pooled = dict(LocalPool(2).run(pid_of, list(range(4)), here=[False] * 4))
    assert sorted(pooled) == list(range(4)) and os.getpid() not in pooled.values()
