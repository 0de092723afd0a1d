"""The one timing harness: models prepared by their runtime, timed in interleaved rounds, and
the verdict on how sound each figure is."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from torch import nn

from mbprof.analysis.latency import executorch, machine, onnx_runtime, runtimes
from mbprof.analysis.latency.machine import Clock, MachineLoad, machine_peak_gflops, time_blocks
from mbprof.analysis.latency.runtimes import Prepared
from mbprof.core.errors import MbprofError
from mbprof.core.records import Timing
from mbprof.core.settings import LatencySettings, ResolvedLatency

# Each backend of core.settings.RUNTIMES: (the model as it is timed, an ExitStack) -> Prepared.
PREPARE = {
    "eager": runtimes.eager,
    "compile": runtimes.compiled,
    "onnxruntime": onnx_runtime.prepare,
    "executorch": executorch.prepare,
}
ROUNDS = 5
ROUND_WARMUP = 2
MIN_ROUND_BLOCKS = 3
ROUND_OUTLIER_PCT = 15.0
REMEASURES = 2
REMEASURE_BUDGET = 1.0  # x the wall time of the rounds
SPREAD_LIMIT_PCT = 25.0  # (p90 - p10) / median
MIN_STABLE_BLOCKS = 10  # fewer timed blocks: the deciles are interpolated extremes
DRIFT_LIMIT_PCT = 10.0  # medians of the first and the second half of the blocks
OTHER_LOAD_MARGIN = 0.25  # CPUs other processes may take beyond the ones left idle
STEAL_LIMIT = 0.10  # CPUs the hypervisor may take (steal time)
FREQUENCY_CHANGE_PCT = 10.0
STABLE, UNSTABLE = "stable", "unstable"


def prepare(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings,
    stack: contextlib.ExitStack,
) -> Prepared:
    """``model`` made ready to time by its runtime; what it holds lives until ``stack`` closes."""
    return PREPARE[settings.backend](runtimes.deployed_form(model, input_shape, settings), stack)


@dataclass
class Job:
    """One configuration to time: its run, its clock and the context its rounds run in."""

    run: Callable[[], object]
    clock: Clock = field(default_factory=Clock)
    guard: Callable[[], AbstractContextManager] = nullcontext


@dataclass
class Interleaved:
    """What the rounds gave one configuration."""

    rounds: list[tuple[float, ...]] = field(default_factory=list)  # per-run times, by round
    loads: list[MachineLoad | None] = field(default_factory=list)
    round_runs: list[int] = field(default_factory=list)  # timed runs, by round
    runs_per_block: int = 1
    remeasured: int = 0
    outliers_left: int = 0
    error: Exception | None = None

    @property
    def per_run_s(self) -> tuple[float, ...]:
        return tuple(t for data in self.rounds for t in data)

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
    return [(index + k) % jobs for k in range(jobs)]


def outlier_rounds(rounds: Sequence[Sequence[float]]) -> list[int]:
    """The rounds more than ``ROUND_OUTLIER_PCT`` off the median round (none below three)."""
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
) -> list[Interleaved]:
    """Time ``jobs`` interleaved; one ``Interleaved`` per job, in order."""
    results = [Interleaved([()] * rounds, [None] * rounds, [0] * rounds) for _ in jobs]
    per_round = min_time_s / rounds
    round_warmup = ROUND_WARMUP if len(jobs) > 1 else 0
    min_blocks = max(MIN_ROUND_BLOCKS, math.ceil(machine.MIN_BLOCKS / rounds))
    say = on_round or (lambda _text: None)

    def attempt(j: int, r: int | None) -> None:
        job, result = jobs[j], results[j]
        if result.error is not None:
            return
        try:
            with job.guard():
                if r is None:  # the warm-up
                    for _ in range(warmup):
                        job.run()
                    job.clock.sync()
                    return
                start = machine.sample()
                per_run, runs = time_blocks(job.run, per_round, round_warmup, job.clock, min_blocks)
                result.loads[r] = machine.between(start, machine.sample())
                result.rounds[r], result.round_runs[r] = per_run, runs * len(per_run)
                result.runs_per_block = max(result.runs_per_block, runs)
        except Exception as exc:  # noqa: BLE001 - kept with its job; the others go on
            result.error = exc

    for j in range(len(jobs)):
        attempt(j, None)
    started = time.perf_counter()
    for r in range(rounds):
        say(f"round {r + 1} of {rounds}")
        for j in round_order(len(jobs), r):
            attempt(j, r)
    deadline = time.perf_counter() + REMEASURE_BUDGET * (time.perf_counter() - started)
    for _ in range(REMEASURES):
        todo = {j: outlier_rounds(res.rounds) for j, res in enumerate(results) if res.error is None}
        if not any(todo.values()):
            break
        say(f"measuring {sum(map(len, todo.values()))} outlier rounds again")
        for r in range(rounds):  # the outliers, in the rotation of their round
            for j in round_order(len(jobs), r):
                if r in todo.get(j, ()) and time.perf_counter() < deadline:
                    results[j].remeasured += 1
                    attempt(j, r)
    for res in results:
        if res.error is None:
            res.outliers_left = len(outlier_rounds(res.rounds))
    return results


@dataclass(frozen=True)
class Target:
    """One model to time: input, MAdds per image, label and the context its code runs in."""

    model: nn.Module
    input_shape: tuple[int, ...]
    madds: int
    label: str = "the model"
    guard: Callable[[str], AbstractContextManager] = lambda _what: nullcontext()


def time_models(
    targets: Sequence[Target],
    settings: ResolvedLatency,
    rounds: int = ROUNDS,
    on_phase: Callable[[str], None] | None = None,
) -> list[Timing | Exception]:
    """Each target timed, interleaved: its ``Timing`` or the exception it failed with."""
    say = on_phase or (lambda _text: None)
    backend = settings.backend
    timing = f"timing it with {backend}"
    results: dict[int, Timing | Exception] = {}
    prepared: dict[int, Prepared] = {}
    with machine.with_threads(settings.threads), contextlib.ExitStack() as stack:
        for i, target in enumerate(targets):
            say(f"preparing {target.label} for {backend}")
            try:
                with target.guard(f"preparing it for {backend}"):
                    prepared[i] = prepare(target.model, target.input_shape, settings, stack)
            except Exception as exc:  # noqa: BLE001 - its result; the others go on
                results[i] = exc
        order = sorted(prepared)
        references = [i for i in order if prepared[i].reference is not None]
        runs = [prepared[i].run for i in order] + [prepared[i].reference for i in references]
        jobs = [
            Job(run, Clock(settings.device), lambda t=targets[i]: t.guard(timing))
            for i, run in zip([*order, *references], runs, strict=True)
        ]
        progress = lambda text: say(f"timing {len(order)} interleaved: {text}")  # noqa: E731
        timed = interleave(jobs, settings.min_time_s, settings.warmup, rounds, progress)
        threads = {i: prepared[i].threads() for i in order}
    for i, result in zip(references, timed[len(order) :], strict=True):
        if result.error is None:
            prepared[i].figures["fp32_latency_ms"] = statistics.median(result.per_run_s) * 1e3
    for i, result in zip(order, timed[: len(order)], strict=True):
        if result.error is not None:
            results[i] = result.error
            continue
        madds, per_run_s = targets[i].madds, result.per_run_s
        load = machine.combine([x for x in result.loads if x is not None])
        p10, median, p90 = deciles(per_run_s)
        _, reasons = judge(per_run_s, settings.threads, load, settings.device == "cpu", threads[i])
        reasons += result.reasons()
        notes = list(prepared[i].notes)
        achieved = 2 * madds * settings.batch / median / 1e9
        peak = None  # int8 arithmetic is not measured against an fp32 matrix product
        if settings.quantize == "none":
            peak = machine_peak_gflops(
                settings.device, settings.threads, settings.dtype, at_least=achieved
            )
        if peak is not None and achieved > peak:
            notes.append(
                f"this model ran faster ({achieved:.1f} GFLOP/s) than the machine reference "
                f"({peak:.1f} GFLOP/s, a matrix product): the machine was busy while one of them "
                f"ran; remove {machine.cache_dir() / machine.PEAK_FILE} to measure the reference "
                "again"
            )
        results[i] = Timing(
            latency_ms=median * 1e3,
            latency_p10_ms=p10 * 1e3,
            latency_p90_ms=p90 * 1e3,
            runs=sum(result.round_runs),
            blocks=len(per_run_s),
            runs_per_block=result.runs_per_block,
            warmup=settings.warmup,
            min_time_s=settings.min_time_s,
            environment=machine.environment(settings),
            compile_s=prepared[i].compile_s,
            madds=madds,
            machine_peak_gflops=peak,
            notes=tuple(notes),
            verdict=UNSTABLE if reasons else STABLE,
            reasons=reasons,
            other_cpus=load and load.other_cpus,
            load_average=load and load.load_average,
            cpu_mhz=load and load.mhz_end,
            rounds=len(result.rounds),
            remeasured=result.remeasured,
            **prepared[i].figures,
        )
    return [results[i] for i in range(len(targets))]


def time_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings | None = None,
    madds: int | None = None,
) -> Timing:
    """Time ``model`` on a random input of ``input_shape``: the one-job case of ``time_models``."""
    settings = machine.resolve_settings(settings or LatencySettings(batch=input_shape[0]))
    if input_shape[0] != settings.batch:
        raise MbprofError(
            f"input batch {input_shape[0]} differs from the settings' batch {settings.batch}"
        )
    if madds is None:
        from mbprof.analysis.counting import count

        madds = count(model, (1, *input_shape[1:])).madds
    (result,) = time_models([Target(model, input_shape, madds)], settings, rounds=1)
    if isinstance(result, Exception):
        raise result
    return result


def deciles(per_run_s: Sequence[float]) -> tuple[float, float, float]:
    """(p10, median, p90) of the per-run block times (inclusive method)."""
    if len(per_run_s) == 1:
        return per_run_s[0], per_run_s[0], per_run_s[0]
    cuts = statistics.quantiles(per_run_s, n=10, method="inclusive")
    return cuts[0], statistics.median(per_run_s), cuts[-1]


def judge(
    per_run_s: Sequence[float],
    threads: int,
    load: MachineLoad | None = None,
    cpu: bool = True,
    threads_got: int | None = None,
) -> tuple[str, tuple[str, ...]]:
    """(verdict, reasons) of a timing from its per-run block times and the machine's load."""
    reasons: list[str] = []
    blocks = len(per_run_s)
    if blocks < MIN_STABLE_BLOCKS:
        reasons.append(
            f"only {blocks} timed block{'s' if blocks != 1 else ''} (fewer than "
            f"{MIN_STABLE_BLOCKS}): measure for longer"
        )
    if blocks >= 2:
        p10, median, p90 = deciles(per_run_s)
        spread = 100.0 * (p90 - p10) / median
        if spread > SPREAD_LIMIT_PCT:
            shown = f"{spread:.1f}" if spread < 100 else f"{spread:.0f}"  # never "25% > 25%"
            reasons.append(f"spread {shown}% > {SPREAD_LIMIT_PCT:.0f}% ((p90 - p10) / median)")
    if blocks >= MIN_STABLE_BLOCKS:
        half = blocks // 2
        first, second = statistics.median(per_run_s[:half]), statistics.median(per_run_s[half:])
        drift = 100.0 * (second - first) / min(first, second)
        if abs(drift) > DRIFT_LIMIT_PCT:
            reasons.append(f"drift {drift:+.0f}% from the first to the second half of the runs")
    if threads_got is not None and threads_got != threads:
        reasons.append(f"{threads} threads asked for, the backend ran {threads_got}")
    if load is not None:
        cpus = load.usable_cpus
        wanted = min(threads, cpus) if cpu else 1
        if load.other_cpus is not None:
            if load.other_cpus > cpus - wanted + OTHER_LOAD_MARGIN:
                reasons.append(
                    f"other processes kept {load.other_cpus:.1f} of {cpus} CPUs busy "
                    f"while it ran {wanted} thread{'s' if wanted != 1 else ''}"
                )
        elif load.load_average is not None and load.load_average > cpus:
            reasons.append(f"load average {load.load_average:.1f} > {cpus} CPUs")
        if load.steal_cpus is not None and load.steal_cpus > STEAL_LIMIT:
            reasons.append(f"the hypervisor took {load.steal_cpus:.2f} CPUs (steal time)")
        if cpu and threads > cpus:
            reasons.append(f"{threads} threads asked for, {cpus} CPUs usable (affinity, CPU quota)")
        start, end = load.mhz_start, load.mhz_end
        if start and end and 100.0 * abs(end - start) / min(start, end) > FREQUENCY_CHANGE_PCT:
            reasons.append(f"CPU clock changed from {start:.0f} to {end:.0f} MHz")
    return (UNSTABLE if reasons else STABLE), tuple(reasons)
