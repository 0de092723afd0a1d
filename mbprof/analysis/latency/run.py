"""Time one model with resolved settings: the harness that ties the rooms together."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn

from mbprof.analysis.latency import stability
from mbprof.analysis.latency.backends import Prepared, prepare, threads_in_use
from mbprof.analysis.latency.environment import environment
from mbprof.analysis.latency.machine import PEAK_FILE, cache_dir, machine_peak_gflops
from mbprof.analysis.latency.settings import resolve_settings
from mbprof.analysis.latency.timer import CpuClock, CudaClock, time_blocks
from mbprof.core.errors import MbprofError
from mbprof.core.records import Timing
from mbprof.core.settings import LatencySettings, ResolvedLatency


def check_input(input_shape: tuple[int, ...], settings: LatencySettings | None) -> ResolvedLatency:
    """The settings resolved, and the input's batch checked against them."""
    settings = resolve_settings(settings or LatencySettings(batch=input_shape[0]))
    if input_shape[0] != settings.batch:
        raise MbprofError(
            f"input batch {input_shape[0]} differs from the settings' batch {settings.batch}"
        )
    return settings


def counted_madds(model: nn.Module, input_shape: tuple[int, ...], madds: int | None) -> int:
    if madds is not None:
        return madds
    from mbprof.analysis.counting import count

    return count(model, (1, *input_shape[1:])).madds


def clock_for(settings: ResolvedLatency) -> CpuClock | CudaClock:
    return CudaClock() if settings.device == "cuda" else CpuClock()


def time_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings | None = None,
    madds: int | None = None,
) -> Timing:
    """Time ``model`` on a random input of ``input_shape`` (N, C, H, W) with ``settings``.

    N must equal ``settings.batch``. ``madds`` is the per-image MAdds count (counted with
    ``mbprof.analysis.counting`` when not given). The caller's model is not modified, and
    torch's thread count is restored afterwards, also when the run fails. The timing
    carries its verdict (``mbprof.analysis.latency.stability``).
    """
    settings = check_input(input_shape, settings)
    madds = counted_madds(model, input_shape, madds)
    previous_threads = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            torch.set_num_threads(settings.threads)
            prepared = prepare(model, input_shape, settings, stack)
            start = stability.sample()
            stats = time_blocks(
                prepared.run, settings.min_time_s, settings.warmup, clock_for(settings)
            )
            load = stability.between(start, stability.sample())
            if prepared.reference is not None:  # int8: the fp32 program, for the speed-up
                reference = time_blocks(
                    prepared.reference, settings.min_time_s, settings.warmup, clock_for(settings)
                )
                prepared.figures["fp32_latency_ms"] = reference.median_s * 1e3
            got = threads_in_use(settings.backend)
    finally:
        torch.set_num_threads(previous_threads)
    return make_timing(
        stats.per_run_s, stats.runs, stats.runs_per_block, settings, prepared, madds, load, got
    )


def make_timing(
    per_run_s: Sequence[float],
    runs: int,
    runs_per_block: int,
    settings: ResolvedLatency,
    prepared: Prepared,
    madds: int,
    load: stability.MachineLoad | None,
    threads_got: int | None = None,
    rounds: int = 1,
    remeasured: int = 0,
    extra_reasons: Sequence[str] = (),
) -> Timing:
    """A ``Timing`` from the per-run block times of one configuration (pooled over its
    rounds when interleaved), with its verdict and the machine reference."""
    p10, median, p90 = stability.deciles(per_run_s)
    verdict, reasons = stability.judge(
        per_run_s, settings.threads, load, cpu=settings.device == "cpu", threads_got=threads_got
    )
    reasons = (*reasons, *extra_reasons)
    notes = list(prepared.notes)
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
            f"ran; remove {cache_dir() / PEAK_FILE} to measure the reference again"
        )
    return Timing(
        latency_ms=median * 1e3,
        latency_p10_ms=p10 * 1e3,
        latency_p90_ms=p90 * 1e3,
        runs=runs,
        blocks=len(per_run_s),
        runs_per_block=runs_per_block,
        warmup=settings.warmup,
        min_time_s=settings.min_time_s,
        environment=environment(settings),
        compile_s=prepared.compile_s,
        madds=madds,
        machine_peak_gflops=peak,
        notes=tuple(notes),
        verdict=stability.UNSTABLE if reasons else verdict,
        reasons=reasons,
        other_cpus=None if load is None else load.other_cpus,
        load_average=None if load is None else load.load_average,
        cpu_mhz=None if load is None else load.mhz_end,
        rounds=rounds,
        remeasured=remeasured,
        **prepared.figures,
    )
