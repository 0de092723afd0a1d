"""This machine: its ``Environment``, the settings it can run and its two ceilings (cached)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import platform
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from mbprof.analysis.latency.stability import Clock, _read, time_blocks
from mbprof.core.errors import MbprofError
from mbprof.core.files import cache_dir, write_atomic
from mbprof.core.records import Environment
from mbprof.core.settings import (
    RUNTIMES,
    LatencySettings,
    ResolvedLatency,
    check_latency,
    resolved,
    spoken,
)

# The settings an ``Environment`` repeats as they are.
SETTINGS_FIELDS = "device threads backend dtype batch memory_format fuse_bn quantize".split()
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PEAK_FILE = "machine_peak.json"
# A few matrix sizes: the best rate over them is the compute ceiling (one size alone can
# miss the machine's sweet spot: too small to fill every core, or too big for the caches).
MATMUL_SIZES = {"cpu": (256, 512, 1024), "cuda": (2048, 4096, 8192)}
COPY_BYTES = {"cpu": 1 << 28, "cuda": 1 << 30}  # per buffer: far beyond any cache


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo, else the platform module)."""
    fields: dict[str, str] = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "model", "cpu model", "processor"):
        value = fields.get(key, "")
        if value and not value.isdigit():
            return value
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    """The GPU's name for "cuda", the CPU model for "cpu"."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def environment(settings: LatencySettings) -> Environment:
    """The environment of a run with resolved ``settings`` (device and threads decided)."""
    package = RUNTIMES[settings.backend].package
    return Environment(
        torch_version=torch.__version__,
        device_name=device_name(settings.device),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        backend_version=torch.__version__ if package == "torch" else version(package),
        **{name: getattr(settings, name) for name in SETTINGS_FIELDS},
    )


def _probe_dtype(device: str, dtype: torch.dtype) -> None:
    """Run the ops of a mobile network once in ``dtype`` on ``device`` (raises if it cannot)."""
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6()]
    layers += [nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Hardswish(), nn.AdaptiveAvgPool2d(1)]
    probe = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8, 4)).eval().to(device, dtype)
    with torch.inference_mode():
        x = torch.randn(1, 3, 8, 8, device=device, dtype=dtype)
        probe(x) + 1
    if device == "cuda":
        torch.cuda.synchronize()


@functools.cache
def _dtype_runs(device: str, dtype: str) -> str:
    """'' when ``dtype`` runs on ``device``, else why not (probed once per process)."""
    try:
        _probe_dtype(device, TORCH_DTYPES[dtype])
    except RuntimeError as exc:  # also NotImplementedError (a subclass): no kernel for the dtype
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return ""


def resolve_settings(settings: LatencySettings) -> ResolvedLatency:
    """``settings`` checked against this machine, with "auto" device and threads decided."""
    if isinstance(settings, ResolvedLatency):
        return settings
    settings = check_latency(settings)  # torch-free; a no-op for checked settings
    device = settings.device
    if device == "auto":
        usable = torch.cuda.is_available() and "cuda" in RUNTIMES[settings.backend].devices
        device = "cuda" if usable else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MbprofError(
            f"device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; "
            "use cpu or auto",
            field="device",
        )
    backend, runtime = settings.backend, RUNTIMES[settings.backend]
    if device not in runtime.devices:
        raise MbprofError(
            f"backend {backend} runs {runtime.runs}; use device {spoken(runtime.devices)}",
            field="backend",
        )
    if settings.dtype not in runtime.dtypes:
        raise MbprofError(
            f"dtype {settings.dtype}: the {backend} backend runs {spoken(runtime.dtypes)} "
            f"models only; use {runtime.dtypes[0]}",
            field="dtype",
        )
    if settings.channels_last and runtime.layout:
        accept = [name for name, r in RUNTIMES.items() if not r.layout]
        raise MbprofError(
            f"channels_last applies to the {' and '.join(accept)} backends; {runtime.layout}",
            field="channels_last",
        )
    missing = []
    for name in runtime.modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        which = "which are" if len(missing) > 1 else "which is"
        raise MbprofError(
            f"backend {backend} needs {', '.join(missing)}, {which} not installed; "
            f'install the optional extra: pip install "mbprof[{runtime.extra}]"',
            field="backend",
        )
    if settings.dtype == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise MbprofError(
            f"dtype bf16: {device_name('cuda')} does not support bfloat16; use fp16 or fp32",
            field="dtype",
        )
    if settings.dtype != "fp32":
        why = _dtype_runs(device, settings.dtype)
        if why:
            raise MbprofError(
                f"dtype {settings.dtype} cannot run on {device} ({device_name(device)}): "
                f"{why}; use fp32",
                field="dtype",
            )
    threads = settings.threads if settings.threads is not None else torch.get_num_threads()
    return resolved(settings, device=device, threads=threads)


@contextlib.contextmanager
def with_threads(threads: int) -> Iterator[None]:
    """``threads`` intra-op threads inside, as many as before afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_peak(
    device: str, threads: int, dtype: str, min_time_s: float = 0.5, size: int | None = None
) -> tuple[float, int]:
    """(best GFLOP/s, its n) of an n x n matrix product over ``MATMUL_SIZES`` (or ``size``);
    dtype "copy": (best GB/s of a streaming copy, counting bytes read and written, bytes per
    buffer)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    sizes = (size,) if size else MATMUL_SIZES[kind]
    if dtype == "copy":
        sizes = (size or COPY_BYTES[kind],)
        if kind == "cpu":
            from mbprof.analysis.footprint import available_memory_bytes

            sizes = (max(1 << 20, min(sizes[0], available_memory_bytes() // 8)),)
    best = (0.0, sizes[-1])
    with with_threads(threads), torch.inference_mode():
        for n in sizes:
            if dtype == "copy":
                a = torch.ones(n // 4, device=device)
                b = torch.empty_like(a)
                run, work, n = (lambda a=a, b=b: b.copy_(a)), 2 * a.nbytes, a.nbytes
            else:
                a, b = (torch.randn(n, n, device=device).to(TORCH_DTYPES[dtype]) for _ in "ab")
                run, work = (lambda a=a, b=b: torch.mm(a, b)), 2 * n**3
            per_run, _ = time_blocks(run, min_time_s / len(sizes), 2, Clock(device))
            best = max(best, (work / min(per_run) / 1e9, n))
    return best


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cached(key: str, measure, refresh: bool, at_least: float | None, unit: str) -> float:
    """The best value measured for ``key``, measured again when missing, refreshed or too low."""
    path = cache_dir() / PEAK_FILE
    entry = _read_cache(path).get(key)
    ok = isinstance(entry, dict) and isinstance(entry.get(unit), (int, float))
    cached = float(entry[unit]) if ok else None
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
        write_atomic(path, json.dumps(cache, indent=2, sort_keys=True))
    except (OSError, MbprofError):
        pass
    return value


def peak_key(device: str, threads: int, dtype: str) -> str:
    return (
        f"{device}|{device_name(device)}|{cpu_model()}|threads={threads}|{dtype}"
        f"|torch {torch.__version__}"
    )


def machine_peak_gflops(
    device: str,
    threads: int,
    dtype: str,
    refresh: bool = False,
    min_time_s: float = 0.5,
    at_least: float | None = None,
) -> float:
    """The compute ceiling for (device, threads, dtype) in GFLOP/s, cached."""
    measure = lambda: measure_peak(device, threads, dtype, min_time_s=min_time_s)  # noqa: E731
    return _cached(peak_key(device, threads, dtype), measure, refresh, at_least, "gflops")


def machine_bandwidth_gbs(
    device: str, threads: int, refresh: bool = False, min_time_s: float = 0.5
) -> float:
    """The memory ceiling for (device, threads) in GB/s, cached."""
    key = f"bandwidth|{device}|{device_name(device)}|{cpu_model()}|threads={threads}"
    measure = lambda: measure_peak(device, threads, "copy", min_time_s)  # noqa: E731
    return _cached(key, measure, refresh, None, "gbs")
