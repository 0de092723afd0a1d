"""The verdict on a timing and the interleaved timer, on synthetic timings and fake clocks:
no real timing is asserted."""

from __future__ import annotations

import math
import statistics

import pytest

from mbprof.analysis.latency import harness as il
from mbprof.analysis.latency import machine as stability
from mbprof.analysis.latency.harness import judge
from mbprof.analysis.latency.machine import MachineLoad, MachineSample

QUIET = MachineLoad(
    usable_cpus=2, other_cpus=0.05, steal_cpus=0.0, load_average=0.3, mhz_start=2600, mhz_end=2600
)


def steady(n: int = 40, base: float = 0.010, wobble: float = 0.02) -> list[float]:
    """n per-run times within +-wobble of base, alternating (spread = 2 x wobble)."""
    return [base * (1 + (wobble if i % 2 else -wobble)) for i in range(n)]


def test_a_steady_timing_on_a_quiet_machine_is_stable():
    assert judge(steady(), threads=2, load=QUIET) == ("stable", ())


def test_a_noisy_timing_is_unstable_with_its_spread():
    # p10 and p90 of alternating 10 ms and 15 ms runs: 10 and 15 ms, spread 50% of 12.5 ms
    times = [0.010 if i % 2 else 0.015 for i in range(40)]
    verdict, reasons = judge(times, threads=1, load=QUIET)
    assert verdict == "unstable"
    assert reasons == ("spread 40.0% > 25% ((p90 - p10) / median)",)


def test_too_few_runs_is_unstable_whatever_their_spread():
    verdict, reasons = judge(steady(n=6), threads=1)
    assert verdict == "unstable"
    assert reasons == ("only 6 timed blocks (fewer than 10): measure for longer",)


def test_a_drift_between_the_halves_is_a_reason_even_with_a_small_spread():
    times = [0.010] * 20 + [0.0115] * 20  # a load that came in the middle: +15%
    p10, median, p90 = il.deciles(times)
    assert 100 * (p90 - p10) / median < il.SPREAD_LIMIT_PCT
    verdict, reasons = judge(times, threads=1)
    assert verdict == "unstable" and reasons == (
        "drift +15% from the first to the second half of the runs",
    )


@pytest.mark.parametrize(
    ("load", "threads", "reason"),
    [
        (dict(other_cpus=1.0), 2, "other processes kept 1.0 of 2 CPUs busy while it ran 2 threads"),
        (dict(other_cpus=None, load_average=3.5), 1, "load average 3.5 > 2 CPUs"),
        (dict(steal_cpus=0.4), 1, "the hypervisor took 0.40 CPUs (steal time)"),
        (dict(usable_cpus=1, other_cpus=0.0), 2, "2 threads asked for, 1 CPUs usable"),
        (dict(mhz_start=3500, mhz_end=2000), 1, "CPU clock changed from 3500 to 2000 MHz"),
    ],
)
def test_the_machine_while_it_ran_can_make_a_timing_unstable(load, threads, reason):
    verdict, reasons = judge(
        steady(), threads=threads, load=MachineLoad(**{**QUIET.__dict__, **load})
    )
    assert verdict == "unstable"
    assert len(reasons) == 1 and reasons[0].startswith(reason), reasons


def test_one_busy_cpu_leaves_room_for_one_thread_of_two():
    # one thread on two CPUs: another process on the other CPU does not compete with it
    busy = MachineLoad(**{**QUIET.__dict__, "other_cpus": 1.0})
    assert judge(steady(), threads=1, load=busy) == ("stable", ())


def test_the_threads_a_backend_ran_must_be_the_ones_asked_for():
    verdict, reasons = judge(steady(), threads=2, load=QUIET, threads_got=1)
    assert verdict == "unstable" and reasons == ("2 threads asked for, the backend ran 1",)


def test_machine_load_is_other_processes_cpu_time_over_the_window():
    start = MachineSample(
        wall_s=10.0, own_cpu_s=1.0, busy_s=100.0, steal_s=5.0, load_average=0.5, mhz=None
    )
    # over 2 s: all processes used 3.5 CPU-seconds, this one 1.5: others kept 1 CPU busy
    end = MachineSample(
        wall_s=12.0, own_cpu_s=2.5, busy_s=103.5, steal_s=5.2, load_average=1.1, mhz=None
    )
    load = stability.between(start, end)
    assert load.other_cpus == pytest.approx(1.0)
    assert load.steal_cpus == pytest.approx(0.1)
    assert load.load_average == 1.1


def test_a_real_sample_reads_this_machine():
    first = stability.sample()
    second = stability.sample()
    load = stability.between(first, second)
    assert load.usable_cpus >= 1
    assert second.wall_s >= first.wall_s and second.own_cpu_s >= first.own_cpu_s


# --------------------------------------------------------------------------- interleaving


def test_rounds_visit_every_configuration_in_every_position():
    orders = [il.round_order(3, r) for r in range(3)]
    assert orders == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    for position in range(3):
        assert sorted(order[position] for order in orders) == [0, 1, 2]


class ScriptedClock:
    """A clock whose blocks take 10 ms a run, times the slow-down a test script gives for
    a visit (the warm-up is visit 0, each round's timing one more), recording the order
    configurations were visited in. Every visit syncs the clock once: that counts them."""

    def __init__(self, name: str, log: list[str], slow_visits: dict[int, float]) -> None:
        self.name, self.log, self.slow = name, log, slow_visits
        self.visit = -1

    def sync(self) -> None:
        self.visit += 1
        self.log.append(self.name)

    def time_block(self, fn, runs: int) -> float:
        for _ in range(runs):
            fn()
        return runs * 0.010 * self.slow.get(self.visit, 1.0)


def scripted_jobs(names, slow=None):
    log: list[str] = []
    jobs = [
        il.Job(run=lambda: None, clock=ScriptedClock(name, log, (slow or {}).get(name, {})))
        for name in names
    ]
    return jobs, log


def test_interleave_times_configurations_round_robin():
    jobs, log = scripted_jobs("abc")
    results = il.interleave(jobs, min_time_s=0.15, warmup=1, rounds=3)
    # warm-up in order, then rounds rotated: abc, bca, cab
    assert "".join(log) == "abc" + "abc" + "bca" + "cab"
    for res in results:
        assert res.error is None and len(res.rounds) == 3 and res.remeasured == 0
        assert all(len(r) >= il.MIN_ROUND_BLOCKS for r in res.rounds)
        assert statistics.median(res.per_run_s) == pytest.approx(0.010)


@pytest.fixture
def unbudgeted(monkeypatch):
    """Re-measuring's time budget is wall time, which scripted clocks do not take: on a
    loaded machine it could run out before the scripted re-measures (not these tests' point)."""
    monkeypatch.setattr(il, "REMEASURE_BUDGET", math.inf)


def test_an_outlier_round_is_measured_again_and_replaced(unbudgeted):
    # b's second round (visit 2; visit 0 is the warm-up) ran 1.5x slower
    jobs, log = scripted_jobs("ab", slow={"b": {2: 1.5}})
    results = il.interleave(jobs, min_time_s=0.15, warmup=1, rounds=3)
    a, b = results
    assert a.remeasured == 0 and b.remeasured == 1 and b.outliers_left == 0
    assert "".join(log) == "ab" + "ab" + "ba" + "ab" + "b"  # b measured again at the end
    assert max(b.per_run_s) == pytest.approx(0.010)  # the slow round is gone
    assert b.reasons() == ()


def test_a_round_that_stays_an_outlier_is_a_reason(unbudgeted):
    # every visit of b after its first two rounds is slow: round 3 and both measured again
    jobs, _ = scripted_jobs("ab", slow={"b": {3: 2.0, 4: 2.0, 5: 2.0}})
    (_, b) = il.interleave(jobs, min_time_s=0.15, warmup=1, rounds=3)
    assert b.remeasured == il.REMEASURES and b.outliers_left == 1
    (reason,) = b.reasons()  # the budget it names is set to inf here (unbudgeted)
    assert reason.startswith(
        "1 of 3 rounds stayed more than 15% off the others after being measured again (for at most "
    )


def test_a_failing_configuration_is_dropped_and_the_others_go_on():
    jobs, _ = scripted_jobs("ab")

    def broken():
        raise RuntimeError("no")

    jobs[0] = il.Job(run=broken)
    a, b = il.interleave(jobs, min_time_s=0.1, warmup=1, rounds=2)
    assert isinstance(a.error, RuntimeError) and b.error is None and len(b.per_run_s) >= 6


# --------------------------------------------------------------------------- wired in


def test_a_real_timing_carries_its_verdict_and_the_machine_it_saw(tmp_path, monkeypatch):
    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path))
    from torch import nn

    from mbprof.analysis.latency.harness import time_model
    from mbprof.analysis.latency.machine import resolve_settings
    from mbprof.core.settings import LatencySettings

    monkeypatch.setattr("mbprof.analysis.latency.harness.machine_peak_gflops", lambda *a, **k: 1e3)
    settings = resolve_settings(LatencySettings(threads=1, min_time_s=0.02, warmup=1))
    t = time_model(nn.Conv2d(3, 4, 3).eval(), (1, 3, 16, 16), settings, madds=1)
    assert t.verdict in ("stable", "unstable") and t.stable == (t.verdict == "stable")
    assert bool(t.reasons) == (t.verdict == "unstable")
    assert t.latency_spread_pct == pytest.approx(
        100 * (t.latency_p90_ms - t.latency_p10_ms) / t.latency_ms
    )
    if stability._read("/proc/stat"):  # Linux: what other processes did is measured
        assert t.other_cpus is not None and t.other_cpus >= 0


def test_the_memory_ceiling_is_measured_once_and_cached(tmp_path, monkeypatch):
    import json

    from mbprof.analysis.latency import machine

    monkeypatch.setenv("MBPROF_CACHE_DIR", str(tmp_path))
    calls = []
    real = machine.measure_peak

    def small(device, threads, dtype, min_time_s=0.5):
        calls.append(threads)
        return real(device, threads, dtype, min_time_s=0.02, size=1 << 22)

    monkeypatch.setattr(machine, "measure_peak", small)
    first = machine.machine_bandwidth_gbs("cpu", 1)
    assert first > 0 and machine.machine_bandwidth_gbs("cpu", 1) == first and calls == [1]
    (entry,) = json.loads((tmp_path / machine.PEAK_FILE).read_text()).values()
    assert entry["gbs"] == first and entry["copy_bytes"] == 1 << 22


def test_the_compute_ceiling_is_the_best_over_a_few_sizes(monkeypatch):
    from mbprof.analysis.latency import machine

    monkeypatch.setitem(machine.MATMUL_SIZES, "cpu", (32, 64))
    gflops, n = machine.measure_peak("cpu", 1, "fp32", min_time_s=0.02)
    assert gflops > 0 and n in (32, 64)
