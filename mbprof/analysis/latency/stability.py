"""How a latency is timed and how sound the figure is: clocks, blocks, load, the verdict."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mbprof.analysis.collector import collector_paused

MIN_BLOCKS = 5
CLOCK_SHARE = 1e-3  # the clock may cost at most this share of a block
SPREAD_LIMIT_PCT = 25.0  # (p90 - p10) / median
MIN_STABLE_BLOCKS = 10  # fewer timed blocks: the deciles are interpolated extremes
DRIFT_LIMIT_PCT = 10.0  # medians of the first and the second half of the blocks
OTHER_LOAD_MARGIN = 0.25  # CPUs other processes may take beyond the ones left idle
STEAL_LIMIT = 0.10  # CPUs the hypervisor may take (steal time)
FREQUENCY_CHANGE_PCT = 10.0
STABLE, UNSTABLE = "stable", "unstable"


class Clock:
    """A block's wall time on the CPU; on CUDA, GPU time between two events it waits for."""

    def __init__(self, device: str = "cpu") -> None:
        self.cuda = device if device.startswith("cuda") else None

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(torch.device(self.cuda))

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        if not self.cuda:
            start = time.perf_counter()
            for _ in range(runs):
                fn()
            return time.perf_counter() - start
        import torch

        start, end = (torch.cuda.Event(enable_timing=True) for _ in "se")
        start.record()
        for _ in range(runs):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def time_blocks(
    fn: Callable[[], object],
    min_time_s: float,
    warmup: int,
    clock: Clock | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> tuple[tuple[float, ...], int]:
    """(per-run time of each block, runs per block) of ``fn``, warmed up, over ``min_time_s``."""
    clock = clock or Clock()
    for _ in range(warmup):
        fn()
    clock.sync()
    overhead = statistics.median(clock.time_block(lambda: None, 0) for _ in range(5))
    first = max(clock.time_block(fn, 1), 1e-9)  # one more warm run that sizes the blocks
    runs = max(1, math.ceil(overhead / (CLOCK_SHARE * first)))
    runs = min(runs, max(1, int(min_time_s / min_blocks / first)))
    per_run: list[float] = []
    total = 0.0
    with collector_paused():
        while total < min_time_s or len(per_run) < min_blocks:
            elapsed = clock.time_block(fn, runs)
            per_run.append(elapsed / runs)
            total += elapsed
    return tuple(per_run), runs


@dataclass(frozen=True)
class MachineSample:
    """The machine's counters at one moment (``between`` takes the difference of two)."""

    wall_s: float
    own_cpu_s: float  # this process' CPU time, all its threads
    busy_s: float | None  # CPU time of every process on the usable CPUs (/proc/stat)
    steal_s: float | None
    load_average: float | None
    mhz: float | None


@dataclass(frozen=True)
class MachineLoad:
    """What the machine did over a timing's window."""

    usable_cpus: int
    other_cpus: float | None  # CPUs other processes kept busy, on average
    steal_cpus: float | None  # CPUs the hypervisor took
    load_average: float | None  # the 1-minute load average at the end
    mhz_start: float | None
    mhz_end: float | None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _allowed() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup CPU quota."""
    allowed = _allowed()
    cpus = len(allowed) if allowed is not None else os.cpu_count() or 1
    # cgroup v2: "max 100000" or "200000 100000"
    parts = (_read("/sys/fs/cgroup/cpu.max") or "").split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]) > 0:
        cpus = min(cpus, max(1, round(int(parts[0]) / int(parts[1]))))
    return max(1, cpus)


def _proc_stat(allowed: set[int] | None) -> tuple[float, float] | None:
    """(busy, steal) seconds of the allowed CPUs since boot, from /proc/stat."""
    rows = []
    for line in (_read("/proc/stat") or "").splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name != "cpu":
            if allowed is None or int(name[3:]) in allowed:
                rows.append([int(v) for v in rest.split()])
    if not rows:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = sum(sum(v[:3]) + sum(v[5:8]) for v in rows)
    return busy / tick, sum(v[7] for v in rows if len(v) > 7) / tick


def _mhz(allowed: set[int] | None) -> float | None:
    """The mean clock of the allowed CPUs: cpufreq's scaling_cur_freq, else /proc/cpuinfo."""
    cpus = sorted(allowed) if allowed is not None else range(os.cpu_count() or 1)
    values = []
    for cpu in cpus:
        text = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq")
        if text and text.strip().isdigit():
            values.append(int(text) / 1000.0)  # kHz
    if not values:
        text = _read("/proc/cpuinfo") or ""
        per_cpu = [line.split(":")[1] for line in text.splitlines() if line.startswith("cpu MHz")]
        chosen = [v for i, v in enumerate(per_cpu) if allowed is None or i in allowed]
        try:
            values = [float(v) for v in chosen]
        except ValueError:
            values = []
    return statistics.fmean(values) if values else None


def sample() -> MachineSample:
    allowed = _allowed()
    stat = _proc_stat(allowed)
    times = os.times()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    busy, steal = stat if stat is not None else (None, None)
    wall = time.perf_counter()
    return MachineSample(wall, times.user + times.system, busy, steal, load, _mhz(allowed))


def between(start: MachineSample, end: MachineSample) -> MachineLoad:
    """The machine's load over the window from ``start`` to ``end``."""
    wall = max(end.wall_s - start.wall_s, 1e-9)
    other = steal = None
    if start.busy_s is not None and end.busy_s is not None:
        own = end.own_cpu_s - start.own_cpu_s
        # rounded: /proc/stat counts in ticks, so float noise (1.7e-13) is no load
        other = round(max(0.0, (end.busy_s - start.busy_s - own) / wall), 3)
        steal = round(max(0.0, (end.steal_s - start.steal_s) / wall), 3)  # type: ignore[operator]
    return MachineLoad(usable_cpus(), other, steal, end.load_average, start.mhz, end.mhz)


def combine(loads: Sequence[MachineLoad]) -> MachineLoad | None:
    """The worst load over several windows (the rounds of an interleaved timing)."""
    if not loads:
        return None

    def worst(name: str) -> float | None:
        return max((v for x in loads if (v := getattr(x, name)) is not None), default=None)

    return MachineLoad(
        min(x.usable_cpus for x in loads),
        worst("other_cpus"),
        worst("steal_cpus"),
        worst("load_average"),
        loads[0].mhz_start,
        loads[-1].mhz_end,
    )


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
    if load is None:
        return (UNSTABLE if reasons else STABLE), tuple(reasons)
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
