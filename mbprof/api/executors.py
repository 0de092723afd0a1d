"""Where a sweep's analysis runs: this process, loky worker processes or a dask cluster.
Each yields ``(index, outcome)`` as tasks finish, the outcome being the result or the
exception that ended it (one row's error, never the sweep's end). Torch-free."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mbprof.core.errors import MbprofError, first_line
from mbprof.core.parsing import parse_choice

Outcome = tuple[int, Any]
EXECUTORS = ("local", "dask")
# An unreachable dask scheduler is one line within seconds, not dask's 30-second default.
CONNECT_TIMEOUT_S = 3.0
# Idle loky workers stay this long, so that the next sweep of a session (a notebook, the
# tests) finds them warm, with torch imported.
IDLE_TIMEOUT_S = 60


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _outcome(fn: Callable[[Any], Any], task: Any) -> Any:
    try:
        return fn(task)
    except Exception as exc:  # noqa: BLE001 - the row's error; Ctrl-C still stops
        return exc


class InProcess:
    """One task after another, in this process (``--workers 1``)."""

    name = "this process"

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Outcome]:
        return ((index, _outcome(fn, task)) for index, task in enumerate(tasks))

    def close(self) -> None:
        pass


def _worker_started(path: tuple[str, ...], folder: str) -> None:
    # Ctrl-C reaches the whole process group: the sweep's process stops the workers and
    # keeps the finished rows; a worker raising KeyboardInterrupt would only muddle that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A user's model is imported as the sweep's process imports it: same path, same folder.
    sys.path[:] = list(path)
    os.chdir(folder)
    # A sweep's process killed outright (SIGKILL, a SIGTERM it had no handler for) leaves
    # its workers idle forever otherwise: each ends itself once its parent is gone.
    import threading

    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True).start()
    # Warm before its first task: what analysing a configuration needs.
    import fvcore.nn  # noqa: F401
    import torch  # noqa: F401

    import mbprof.api.single  # noqa: F401


def _end_with(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


class LocalPool:
    """loky's reusable pool (docs/sweeps.md): two tasks a worker in flight, those of a worker
    that died run again alone; this process works on the tasks ``here`` marks beside
    ``workers - 1`` processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.name = f"{workers} worker processes"
        self.threads = max(1, available_cores() // workers)  # each process's share of the cores
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            self.threads = max(1, min(self.threads, int(os.environ["OMP_NUM_THREADS"])))

    def _executor(self, processes: int) -> Any:
        from loky import get_reusable_executor

        return get_reusable_executor(
            max_workers=processes,
            timeout=IDLE_TIMEOUT_S,
            initializer=_worker_started,
            # Part of the pool's identity too: a warm pool started before the path or the
            # folder changed (a notebook, the tests) is replaced, not reused.
            initargs=(tuple(sys.path), os.getcwd()),
            env=dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS"), str(self.threads)),
        )

    def run(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], here: Sequence[bool] = ()
    ) -> Iterator[Outcome]:
        """``here[i]``: this process may run task ``i`` itself (none when empty)."""
        from loky import FIRST_COMPLETED, BrokenProcessPool, wait

        ours = {i for i, mine in enumerate(here) if mine}
        processes = self.workers - 1 if ours else self.workers
        executor = self._executor(processes)
        # The pool holds two tasks a process from the start, taken the moment a worker has
        # imported what they need (even while this process is in the middle of a task); this
        # process runs the rest itself, from the first second.
        ready = executor.submit(int)  # done once a worker has started
        queue = list(range(len(tasks)))  # the pool takes from the front, this process the back
        flying: dict[Any, int] = {}
        alone: list[int] = []  # in flight when a worker died: run again alone, to name the death
        if ours:
            import torch

            before = torch.get_num_threads()  # restored once the sweep ends
        try:
            while queue or flying or alone:
                while len(flying) < (1 if alone else 2 * processes):
                    if alone:
                        index = min(alone)
                    elif queue:
                        index = queue.pop(0)
                    else:
                        break
                    flying[executor.submit(fn, tasks[index])] = index
                # This process takes the last task it may run (the pool works from the
                # front), then looks at the pool again without blocking.
                local = next((i for i in reversed(queue) if i in ours), None)
                if local is not None:
                    if ready.done():  # the workers work too now:
                        torch.set_num_threads(self.threads)  # one share of the cores
                    queue.remove(local)
                    yield local, _outcome(fn, tasks[local])
                if not flying:
                    continue
                timeout = 0 if local is not None else None
                done, _ = wait(flying, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    index = flying.pop(future)
                    exc = future.exception()
                    if isinstance(exc, BrokenProcessPool):  # loky: a fresh pool (flagged first)
                        executor = self._executor(processes)
                    if index in alone:  # it ran alone: a death is its own
                        alone.remove(index)
                    elif isinstance(exc, BrokenProcessPool):
                        alone.append(index)
                        continue
                    yield index, exc if exc is not None else future.result()
        except BaseException:
            # Ctrl-C, SIGTERM or the sweep closed early: no worker goes on computing.
            executor.shutdown(wait=False, kill_workers=True)
            raise
        finally:
            if ours:
                torch.set_num_threads(before)

    def close(self) -> None:
        pass  # the pool stays warm for IDLE_TIMEOUT_S; loky ends it with this process


def _unreachable(address: str, reason: str) -> MbprofError:
    return MbprofError(
        f"scheduler: cannot reach a dask scheduler at {address!r} within "
        f"{CONNECT_TIMEOUT_S:g} s ({reason}); is the scheduler running, and is this its address?",
        field="scheduler",
    )


class DaskPool:
    """The workers of a dask.distributed cluster (``--executor dask --scheduler ADDRESS``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.name = f"the dask cluster at {address}"
        self.client: Any = None
        self._connect()

    def _connect(self) -> None:
        import gc
        import logging
        import socket
        from urllib.parse import urlsplit

        address = self.address
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        try:  # knocked before importing dask (a second): a refused address fails at once
            if (sys.modules.get("distributed") or importlib.util.find_spec("distributed")) and (
                parts.scheme in ("tcp", "tls") and parts.hostname and parts.port is not None
            ):
                socket.create_connection((parts.hostname, parts.port), CONNECT_TIMEOUT_S).close()
        except ValueError:  # not a port: dask's own check names the address
            pass
        except OSError as exc:
            reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
            raise _unreachable(address, reason) from None
        try:
            import distributed
            from distributed.comm import get_address_host_port, parse_address
        except ImportError:
            raise MbprofError(
                "executor: 'dask' needs dask.distributed, which is not installed; "
                "install it with: pip install 'mbprof[dask]'",
                field="executor",
            ) from None
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # one line, not a log
        try:
            if parse_address(address)[0] in ("tcp", "tls"):
                get_address_host_port(address)
        except (ValueError, TypeError) as exc:
            raise MbprofError(
                f"scheduler: {address!r} is not an address ({first_line(exc, type(exc).__name__)}); give the "
                "address that `dask scheduler` prints, such as tcp://10.0.0.5:8786",
                field="scheduler",
            ) from None
        try:
            self.client = distributed.Client(
                address, timeout=CONNECT_TIMEOUT_S, set_as_default=False
            )
            return
        except (OSError, TimeoutError) as exc:
            raise _unreachable(address, first_line(exc, type(exc).__name__)) from None
        except Exception as exc:  # noqa: BLE001 - something answered, not as a scheduler does
            failure = f"{type(exc).__name__}: {first_line(exc, type(exc).__name__)}"
        hook, sys.unraisablehook = sys.unraisablehook, lambda _report: None
        try:  # the half-made Client, whose __del__ would print a traceback
            gc.collect()
        finally:
            sys.unraisablehook = hook
        raise MbprofError(
            f"scheduler: {address!r} answered, but not as a dask scheduler does ({failure}); "
            "give the address that `dask scheduler` prints, such as tcp://10.0.0.5:8786",
            field="scheduler",
        )

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Outcome]:
        from distributed import as_completed

        if self.client is None:  # closed after an earlier sweep of the same run
            self._connect()
        futures = [self.client.submit(fn, task, pure=False) for task in tasks]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=self.client.loop):
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - the task's error, or KilledWorker
                    outcome = exc
                yield index[future.key], outcome
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def make_executor(
    executor: str = "local", workers: int | None = None, scheduler: str | None = None
) -> InProcess | LocalPool | DaskPool:
    """The executor a sweep asks for, checked now (a dask scheduler is connected to)."""
    name = parse_choice(executor, "executor", EXECUTORS)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise MbprofError(
            f"workers: {workers!r} is not allowed; give an integer >= 1 (1 analyses the "
            "configurations in this process)",
            field="workers",
        )
    if name == "dask":
        if scheduler is None or not str(scheduler).strip():
            raise MbprofError(
                "scheduler: the dask executor needs the scheduler's address, such as "
                "tcp://10.0.0.5:8786",
                field="scheduler",
            )
        return DaskPool(str(scheduler).strip())
    if scheduler is not None:
        raise MbprofError(
            f"scheduler: {scheduler!r} is for the dask executor; add executor 'dask'",
            field="scheduler",
        )
    # One worker inside CI ($CI), whose cores are shared with other jobs.
    count = workers or (1 if os.environ.get("CI") else available_cores())
    return InProcess() if count == 1 else LocalPool(count)
