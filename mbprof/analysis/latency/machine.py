"""The machine reference, measured once and cached: two ceilings for a device and threads,
compute (the best rate of a matrix product over a few sizes, per dtype) and memory
bandwidth (a large streaming copy)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from mbprof.analysis.latency.environment import cpu_model, device_name
from mbprof.analysis.latency.settings import TORCH_DTYPES
from mbprof.analysis.latency.timer import CpuClock, CudaClock, time_blocks
from mbprof.core.files import CACHE_ENV, cache_dir  # noqa: F401  (one place for the folder)

PEAK_FILE = "machine_peak.json"


def peak_key(device: str, threads: int, dtype: str) -> str:
    return (
        f"{device}|{device_name(device)}|{cpu_model()}|threads={threads}|{dtype}"
        f"|torch {torch.__version__}"
    )


# A few matrix sizes: the best rate over them is the compute ceiling (one size alone can
# miss the machine's sweet spot: too small to fill every core, or too big for the caches).
MATMUL_SIZES = {"cpu": (256, 512, 1024), "cuda": (2048, 4096, 8192)}
MATMUL_N = {"cpu": 1024, "cuda": 4096}  # the largest, for a quick single-size measurement
COPY_BYTES = {"cpu": 1 << 28, "cuda": 1 << 30}  # per buffer: far beyond any cache


@contextlib.contextmanager
def _with_threads(threads: int) -> Iterator[None]:
    """``threads`` intra-op threads and inference mode, restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(previous)


def measure_matmul_peak(
    device: str, threads: int, dtype: str, min_time_s: float = 0.5, n: int | None = None
) -> tuple[float, int]:
    """The best rate (GFLOP/s) of an n x n by n x n matrix product in ``dtype``, counting
    2 n^3 FLOPs, over the sizes of ``MATMUL_SIZES`` (or the one ``n`` given): each size's
    blocks are timed for its share of ``min_time_s`` and the fastest block is kept.
    Independent of how busy the machine is but for the noise. Returns (GFLOP/s, best n)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    sizes = (n,) if n else MATMUL_SIZES[kind]
    torch_dtype = TORCH_DTYPES[dtype]
    clock = CudaClock(device) if kind == "cuda" else CpuClock()
    best = (0.0, sizes[-1])
    with _with_threads(threads):
        for size in sizes:
            a = torch.randn(size, size, device=device).to(torch_dtype)
            b = torch.randn(size, size, device=device).to(torch_dtype)
            stats = time_blocks(lambda a=a, b=b: torch.mm(a, b), min_time_s / len(sizes), 2, clock)
            best = max(best, (2 * size**3 / min(stats.per_run_s) / 1e9, size))
    return best


def measure_bandwidth(
    device: str, threads: int, min_time_s: float = 0.5, nbytes: int | None = None
) -> tuple[float, int]:
    """The memory ceiling (GB/s, 1e9 bytes a second): the best rate of a streaming copy of
    one large buffer into another (``COPY_BYTES`` each, fewer when memory is short),
    counting the bytes read and the bytes written. Returns (GB/s, bytes per buffer)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    nbytes = nbytes or COPY_BYTES[kind]
    if kind == "cpu":
        from mbprof.analysis.footprint import available_memory_bytes

        nbytes = max(1 << 20, min(nbytes, available_memory_bytes() // 8))
    clock = CudaClock(device) if kind == "cuda" else CpuClock()
    with _with_threads(threads):
        src = torch.ones(nbytes // 4, device=device)
        dst = torch.empty_like(src)
        stats = time_blocks(lambda: dst.copy_(src), min_time_s, 2, clock)
    return 2 * src.nbytes / min(stats.per_run_s) / 1e9, src.nbytes


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _cached(key: str, measure, refresh: bool, at_least: float | None, unit: str) -> float:
    """The best value ever measured for ``key`` in ``machine_peak.json`` (``unit`` names
    it there), measured by ``measure() -> (value, detail)`` when missing, when
    ``refresh``, or when below ``at_least``. An unwritable cache costs a re-measurement."""
    path = cache_dir() / PEAK_FILE
    entry = _read_cache(path).get(key)
    cached = None
    if isinstance(entry, dict) and isinstance(entry.get(unit), (int, float)):
        cached = float(entry[unit])
    if cached is not None and not refresh and (at_least is None or cached >= at_least):
        return cached
    measured, detail = measure()
    value = measured if refresh else max(measured, cached or 0.0)
    cache = _read_cache(path)  # another process may have written meanwhile
    cache[key] = {
        unit: value,
        "matmul_n" if unit == "gflops" else "copy_bytes": detail,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        f"last_measured_{unit}": measured,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{PEAK_FILE}.", dir=path.parent)
    except OSError:
        return value
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(cache, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return value


def machine_peak_gflops(
    device: str,
    threads: int,
    dtype: str,
    refresh: bool = False,
    min_time_s: float = 0.5,
    at_least: float | None = None,
) -> float:
    """The compute ceiling for (device, threads, dtype), in GFLOP/s: the best rate of a
    matrix product (over a few sizes) ever measured here, kept in ``machine_peak.json`` in
    ``cache_dir()``. Measured (``measure_matmul_peak``) when missing, when ``refresh`` is
    set, or when the cached value is below ``at_least`` (a model ran faster than the
    reference: it was measured on a busy machine), where the cache keeps the larger value.
    An unwritable cache only costs a re-measurement."""
    return _cached(
        peak_key(device, threads, dtype),
        lambda: measure_matmul_peak(device, threads, dtype, min_time_s=min_time_s),
        refresh,
        at_least,
        "gflops",
    )


def machine_bandwidth_gbs(
    device: str, threads: int, refresh: bool = False, min_time_s: float = 0.5
) -> float:
    """The memory ceiling for (device, threads), in GB/s: the best streaming copy ever
    measured here (``measure_bandwidth``), cached beside the compute ceiling."""
    key = f"bandwidth|{device}|{device_name(device)}|{cpu_model()}|threads={threads}"
    return _cached(
        key, lambda: measure_bandwidth(device, threads, min_time_s), refresh, None, "gbs"
    )
