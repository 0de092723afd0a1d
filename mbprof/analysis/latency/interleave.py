"""Several configurations timed interleaved: round-robin rounds, so that a burst of load
on a shared machine hits every configuration alike instead of one, and an outlier round
measured again.

The convention (``time_blocks`` inside each round, see ``mbprof.analysis.latency``):
- Every configuration is warmed up first (``warmup`` runs each, in order).
- ``rounds`` rounds follow. Round r visits the configurations rotated by r (0 1 2, then
  1 2 0, then 2 0 1, ...), so that each one takes every position in turn: none is always
  the first after a pause, nor always after the same neighbour. In a round each
  configuration gets ``ROUND_WARMUP`` untimed runs (its caches after another model's),
  then blocks timed for ``min_time_s / rounds`` seconds (at least ``MIN_ROUND_BLOCKS``).
- A round whose median is more than ``ROUND_OUTLIER_PCT`` off the median of its own
  configuration's round medians is an outlier: it is measured again (in the same
  rotation, over the outliers only), up to ``REMEASURES`` times, the new round replacing
  the old, within a time budget: re-measuring stops once it has taken
  ``REMEASURE_BUDGET`` times as long as the rounds themselves (a loaded machine, whose
  every round is an outlier, cannot stretch the timing further). One that is still an
  outlier then is counted, and makes the figure unstable.
- A configuration's figures come from its kept rounds' per-run times, pooled; the
  machine's load is the worst of its kept rounds'.
A configuration whose run raises is dropped from later rounds with its error; the others
go on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from mbprof.analysis.latency import stability
from mbprof.analysis.latency.timer import CpuClock, CudaClock, time_blocks

ROUNDS = 5
ROUND_WARMUP = 2
MIN_ROUND_BLOCKS = 3
ROUND_OUTLIER_PCT = 15.0
REMEASURES = 2
REMEASURE_BUDGET = 1.0  # x the wall time of the rounds


@dataclass
class Job:
    """One configuration to time: its run, its clock and the context each of its rounds
    runs in (the API's, which names the model when its code fails)."""

    run: Callable[[], object]
    clock: CpuClock | CudaClock = field(default_factory=CpuClock)
    guard: Callable[[], AbstractContextManager] = nullcontext


@dataclass
class Interleaved:
    """What the rounds gave one configuration."""

    rounds: list[tuple[float, ...]] = field(default_factory=list)  # per-run times, by round
    loads: list[stability.MachineLoad | None] = field(default_factory=list)
    round_runs: list[int] = field(default_factory=list)  # timed runs, by round
    runs_per_block: int = 1
    remeasured: int = 0
    outliers_left: int = 0
    error: BaseException | None = None

    @property
    def runs(self) -> int:
        """Timed runs in the kept rounds."""
        return sum(self.round_runs)

    @property
    def per_run_s(self) -> tuple[float, ...]:
        return tuple(t for data in self.rounds for t in data)

    @property
    def load(self) -> stability.MachineLoad | None:
        return stability.combine([x for x in self.loads if x is not None])

    def reasons(self) -> tuple[str, ...]:
        """What the rounds themselves say against the figure."""
        if not self.outliers_left:
            return ()
        return (
            f"{self.outliers_left} of {len(self.rounds)} rounds stayed more than "
            f"{ROUND_OUTLIER_PCT:.0f}% off the others after being measured again (for at "
            f"most {REMEASURE_BUDGET:g}x the rounds' time)",
        )


def round_order(jobs: int, index: int) -> list[int]:
    """The order round ``index`` visits ``jobs`` configurations: rotated by ``index``."""
    return [(index + k) % jobs for k in range(jobs)]


def outlier_rounds(rounds: Sequence[Sequence[float]]) -> list[int]:
    """The rounds whose median is more than ``ROUND_OUTLIER_PCT`` off the median of the
    round medians (none with fewer than three rounds: no majority to judge by)."""
    if len(rounds) < 3:
        return []
    medians = [statistics.median(r) for r in rounds]
    middle = statistics.median(medians)
    return [
        i for i, m in enumerate(medians) if 100.0 * abs(m - middle) / middle > ROUND_OUTLIER_PCT
    ]


def interleave(
    jobs: Sequence[Job],
    min_time_s: float,
    warmup: int,
    rounds: int = ROUNDS,
    on_round: Callable[[str], None] | None = None,
    measure_load: bool = True,
) -> list[Interleaved]:
    """Time ``jobs`` interleaved (see the module's docstring); one ``Interleaved`` per job,
    in order. ``on_round(text)`` is told as rounds start; ``measure_load``: sample the
    machine around each round (``stability``)."""
    results = [
        Interleaved(rounds=[()] * rounds, loads=[None] * rounds, round_runs=[0] * rounds)
        for _ in jobs
    ]
    per_round = min_time_s / rounds

    def attempt(j: int, action: Callable[[], None]) -> None:
        if results[j].error is not None:
            return
        try:
            with jobs[j].guard():
                action()
        except Exception as exc:  # noqa: BLE001 - kept with its job; the others go on
            results[j].error = exc

    def measure(j: int, r: int) -> None:
        job, result = jobs[j], results[j]
        start = stability.sample() if measure_load else None
        stats = time_blocks(job.run, per_round, ROUND_WARMUP, job.clock, MIN_ROUND_BLOCKS)
        load = stability.between(start, stability.sample()) if start is not None else None
        result.rounds[r], result.loads[r] = stats.per_run_s, load
        result.round_runs[r] = stats.runs
        result.runs_per_block = max(result.runs_per_block, stats.runs_per_block)

    def warm(j: int) -> None:
        for _ in range(warmup):
            jobs[j].run()
        jobs[j].clock.sync()

    for j in range(len(jobs)):
        attempt(j, lambda j=j: warm(j))
    started = time.perf_counter()
    for r in range(rounds):
        if on_round is not None:
            on_round(f"round {r + 1} of {rounds}")
        for j in round_order(len(jobs), r):
            attempt(j, lambda j=j, r=r: measure(j, r))
    deadline = time.perf_counter() + REMEASURE_BUDGET * (time.perf_counter() - started)
    for _ in range(REMEASURES):
        todo = {j: outlier_rounds(res.rounds) for j, res in enumerate(results) if res.error is None}
        todo = {j: found for j, found in todo.items() if found}
        if not todo:
            break
        if on_round is not None:
            on_round(f"measuring {sum(map(len, todo.values()))} outlier rounds again")
        for r in range(rounds):  # the outliers, in the rotation of their round
            for j in round_order(len(jobs), r):
                if r in todo.get(j, ()) and time.perf_counter() < deadline:
                    results[j].remeasured += 1
                    attempt(j, lambda j=j, r=r: measure(j, r))
    for res in results:
        if res.error is None:
            res.outliers_left = len(outlier_rounds(res.rounds))
    return results
