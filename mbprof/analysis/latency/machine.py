"""The machine reference: the best rate of a large matrix product on a device, threads and
dtype, measured once and cached."""

from __future__ import annotations

import json
import os
import tempfile
import time
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


MATMUL_N = {"cpu": 1024, "cuda": 4096}


def measure_matmul_peak(
    device: str, threads: int, dtype: str, min_time_s: float = 0.5, n: int | None = None
) -> tuple[float, int]:
    """The best rate (GFLOP/s) of an n x n by n x n matrix product in ``dtype``, counting
    2 n^3 FLOPs: blocks are timed for ``min_time_s`` and the fastest block is kept. n is
    fixed per device (``MATMUL_N``), large enough to run at full speed, and independent of
    how busy the machine is. Returns (GFLOP/s, n)."""
    n = n or MATMUL_N["cuda" if device.startswith("cuda") else "cpu"]
    torch_dtype = TORCH_DTYPES[dtype]
    clock = CudaClock(device) if device.startswith("cuda") else CpuClock()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            a = torch.randn(n, n, device=device).to(torch_dtype)
            b = torch.randn(n, n, device=device).to(torch_dtype)
            stats = time_blocks(lambda: torch.mm(a, b), min_time_s, 2, clock)
    finally:
        torch.set_num_threads(previous)
    return 2 * n**3 / min(stats.per_run_s) / 1e9, n


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def machine_peak_gflops(
    device: str,
    threads: int,
    dtype: str,
    refresh: bool = False,
    min_time_s: float = 0.5,
    at_least: float | None = None,
) -> float:
    """The machine reference for (device, threads, dtype), in GFLOP/s: the best rate of a
    large matrix product ever measured here, kept in ``machine_peak.json`` in
    ``cache_dir()``. Measured (``measure_matmul_peak``) when missing, when ``refresh`` is
    set, or when the cached value is below ``at_least`` (a model ran faster than the
    reference: it was measured on a busy machine), where the cache keeps the larger value.
    An unwritable cache only costs a re-measurement."""
    path = cache_dir() / PEAK_FILE
    key = peak_key(device, threads, dtype)
    entry = _read_cache(path).get(key)
    cached = None
    if isinstance(entry, dict) and isinstance(entry.get("gflops"), (int, float)):
        cached = float(entry["gflops"])
    if cached is not None and not refresh and (at_least is None or cached >= at_least):
        return cached
    measured, n = measure_matmul_peak(device, threads, dtype, min_time_s=min_time_s)
    gflops = measured if refresh else max(measured, cached or 0.0)
    cache = _read_cache(path)  # another process may have written meanwhile
    cache[key] = {
        "gflops": gflops,
        "matmul_n": n,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "last_measured_gflops": measured,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{PEAK_FILE}.", dir=path.parent)
    except OSError:
        return gflops
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(cache, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return gflops
