"""Time one model with resolved settings: the harness that ties the rooms together."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mbprof.analysis.latency.backends import prepare
from mbprof.analysis.latency.environment import environment
from mbprof.analysis.latency.machine import PEAK_FILE, cache_dir, machine_peak_gflops
from mbprof.analysis.latency.settings import resolve_settings
from mbprof.analysis.latency.timer import CpuClock, CudaClock, time_blocks
from mbprof.core.errors import MbprofError
from mbprof.core.records import Timing
from mbprof.core.settings import LatencySettings


def time_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings | None = None,
    madds: int | None = None,
) -> Timing:
    """Time ``model`` on a random input of ``input_shape`` (N, C, H, W) with ``settings``.

    N must equal ``settings.batch``. ``madds`` is the per-image MAdds count (counted with
    ``mbprof.analysis.counting`` when not given). The caller's model is not modified, and
    torch's thread count is restored afterwards, also when the run fails.
    """
    settings = resolve_settings(settings or LatencySettings(batch=input_shape[0]))
    if input_shape[0] != settings.batch:
        raise MbprofError(
            f"input batch {input_shape[0]} differs from the settings' batch {settings.batch}"
        )
    if madds is None:
        from mbprof.analysis.counting import count

        madds = count(model, (1, *input_shape[1:])).madds
    env = environment(settings)
    previous_threads = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            torch.set_num_threads(settings.threads)
            prepared = prepare(model, input_shape, settings, stack)
            clock = CudaClock() if settings.device == "cuda" else CpuClock()
            stats = time_blocks(prepared.run, settings.min_time_s, settings.warmup, clock)
            if prepared.reference is not None:  # int8: the fp32 program, for the speed-up
                reference = time_blocks(
                    prepared.reference, settings.min_time_s, settings.warmup, clock
                )
                prepared.figures["fp32_latency_ms"] = reference.median_s * 1e3
    finally:
        torch.set_num_threads(previous_threads)
    achieved = 2 * madds * settings.batch / stats.median_s / 1e9
    peak = None  # int8 arithmetic is not measured against an fp32 matrix product
    if settings.quantize == "none":
        peak = machine_peak_gflops(
            settings.device, settings.threads, settings.dtype, at_least=achieved
        )
    if peak is not None and achieved > peak:
        prepared.notes.append(
            f"this model ran faster ({achieved:.1f} GFLOP/s) than the machine reference "
            f"({peak:.1f} GFLOP/s, a matrix product): the machine was busy while one of them "
            f"ran; remove {cache_dir() / PEAK_FILE} to measure the reference again"
        )
    return Timing(
        latency_ms=stats.median_s * 1e3,
        latency_p10_ms=stats.p10_s * 1e3,
        latency_p90_ms=stats.p90_s * 1e3,
        runs=stats.runs,
        blocks=stats.blocks,
        runs_per_block=stats.runs_per_block,
        warmup=settings.warmup,
        min_time_s=settings.min_time_s,
        environment=env,
        compile_s=prepared.compile_s,
        madds=madds,
        machine_peak_gflops=peak,
        notes=tuple(prepared.notes),
        **prepared.figures,
    )
