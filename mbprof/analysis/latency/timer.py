"""Clocks and the block timer: warm-up, blocks of runs, median and deciles."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

MIN_BLOCKS = 5
CLOCK_SHARE = 1e-3  # the clock may cost at most this share of a block


class CpuClock:
    """Wall time of a block on the CPU (``time.perf_counter``)."""

    def sync(self) -> None:
        pass

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        return time.perf_counter() - start


class CudaClock:
    """GPU time of a block between two CUDA events, waited for at the end of the block."""

    def __init__(self, device: str = "cuda") -> None:
        self.device = torch.device(device)

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


@dataclass(frozen=True)
class BlockStats:
    median_s: float
    p10_s: float
    p90_s: float
    runs: int
    blocks: int
    runs_per_block: int
    per_run_s: tuple[float, ...] = field(repr=False)


def time_blocks(
    fn: Callable[[], object],
    min_time_s: float,
    warmup: int,
    clock: CpuClock | CudaClock | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> BlockStats:
    """Warm up, then time blocks of runs of ``fn`` until ``min_time_s`` seconds and
    ``min_blocks`` blocks are collected (see the module's docstring for the convention)."""
    clock = clock or CpuClock()
    for _ in range(warmup):
        fn()
    clock.sync()
    overhead = statistics.median(clock.time_block(lambda: None, 0) for _ in range(5))
    first = max(clock.time_block(fn, 1), 1e-9)  # one more warm run that sizes the blocks
    runs = max(1, math.ceil(overhead / (CLOCK_SHARE * first)))
    runs = min(runs, max(1, int(min_time_s / min_blocks / first)))
    per_run: list[float] = []
    total = 0.0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while total < min_time_s or len(per_run) < min_blocks:
            elapsed = clock.time_block(fn, runs)
            per_run.append(elapsed / runs)
            total += elapsed
    finally:
        if was_enabled:
            gc.enable()
    deciles = statistics.quantiles(per_run, n=10, method="inclusive")
    return BlockStats(
        median_s=statistics.median(per_run),
        p10_s=deciles[0],
        p90_s=deciles[-1],
        runs=runs * len(per_run),
        blocks=len(per_run),
        runs_per_block=runs,
        per_run_s=tuple(per_run),
    )
