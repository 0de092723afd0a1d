"""``--executor dask --scheduler ADDRESS``: the analysis sent to a dask.distributed cluster
that the test starts itself (a LocalCluster on the loopback address) gives the rows of this
process; an address that does not answer, or no dask installed, is one line and exit 2.

The cluster's workers are threads of this process here (fast to start); a cluster of worker
processes, reached by a second mbprof process, is slow-marked. Figures: MobileNetV1 by hand.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mbprof.api import executors, make_specs, prepare_compare
from mbprof.core.errors import MbprofError
from tests.cli.test_check import mobilenet_v1_by_hand
from tests.conftest import assert_one_line_error

distributed = pytest.importorskip("distributed")

SPECS = dict(models="mobilenet_v1", widths=[0.25, 0.5], resolutions=[32], num_classes=10)
GRID = ["compare", "-m", "mobilenet_v1", "-w", "0.25,0.5", "-r", "32", "--classes", "10"]
QUICK = ["--no-latency", "--no-memory", "--no-cache", "-f", "csv"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as local:
        yield local.scheduler_address


def test_a_cluster_gives_the_rows_of_this_process(cluster):
    specs = make_specs(**SPECS)
    here = list(prepare_compare(specs, with_memory=False, accuracy=False).rows())
    run = prepare_compare(
        specs, with_memory=False, accuracy=False, executor="dask", scheduler=cluster
    )
    rows = list(run.rows())
    assert rows == here
    for row in rows:
        assert (row["madds"], row["params"]) == mobilenet_v1_by_hand(row["width"], 32, 10)


def test_the_cli_sends_the_sweep_to_the_cluster(cluster, run):
    local = run(*GRID, *QUICK)
    remote = run(*GRID, *QUICK, "--executor", "dask", "--scheduler", cluster)
    assert remote.exit_code == 0, remote.output
    assert remote.stdout == local.stdout and remote.stdout.count("\n") == 3


def test_an_address_that_does_not_answer_is_one_line(run, monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 0.5)
    result = run(*GRID, *QUICK, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert_one_line_error(result, "--scheduler", "tcp://127.0.0.1:9", "cannot reach")
    bad = run(*GRID, *QUICK, "--executor", "dask", "--scheduler", "no port here")
    assert_one_line_error(bad, "--scheduler", "'no port here' is not an address")


def test_an_address_that_answers_but_is_no_scheduler_is_one_line(run, monkeypatch):
    """Something listening that speaks another protocol (here: garbage bytes, which dask
    reads as a frame length of exabytes)."""
    import socket
    import threading

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 1.0)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        for _ in range(4):  # the knock, then dask's tries
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"\xff" * 64)
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{port}"
        result = run(*GRID, *QUICK, "--executor", "dask", "--scheduler", address)
    finally:
        server.close()
    assert_one_line_error(result, "--scheduler", address, "not as a dask scheduler does")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--executor", "dask"], ["--scheduler", "needs the scheduler's address"]),
        (["--scheduler", "tcp://127.0.0.1:9"], ["--scheduler", "add executor 'dask'"]),
        (["--executor", "ray"], ["--executor", "'ray'", "local, dask"]),
    ],
)
def test_executor_options_that_do_not_fit(run, args, fragments):
    assert_one_line_error(run(*GRID, *QUICK, *args), *fragments)


def test_dask_not_installed_is_one_line(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(MbprofError, match=r"pip install 'mbprof\[dask\]'"):
        executors.DaskPool("tcp://127.0.0.1:9")
    result = run(*GRID, *QUICK, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert_one_line_error(result, "--executor", "dask.distributed")


@pytest.mark.slow
def test_a_cluster_of_worker_processes_from_another_mbprof_process(tmp_path):
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    ) as local:
        command = [sys.executable, "-m", "mbprof", *GRID, *QUICK]
        remote = subprocess.run(
            [*command, "--executor", "dask", "--scheduler", local.scheduler_address],
            capture_output=True,
            timeout=300,
        )
        assert remote.returncode == 0, remote.stderr
    local_run = subprocess.run([*command, "--workers", "1"], capture_output=True, timeout=300)
    assert remote.stdout == local_run.stdout
    unreachable = subprocess.run(
        [*command, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True,
        timeout=60,
    )
    assert unreachable.returncode == 2
    assert unreachable.stderr.decode().count("\n") == 1, unreachable.stderr
    assert b"cannot reach a dask scheduler" in unreachable.stderr
