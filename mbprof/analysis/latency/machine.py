"""This machine: its ``Environment``, the settings it can run, its two ceilings (cached), its
clock (timed blocks) and its load while a timing ran."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from mbprof.analysis.collector import collector_paused
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
MIN_BLOCKS = 5
CLOCK_SHARE = 1e-3  # the clock may cost at most this share of a block


class Clock:
    """A block's wall time on the CPU; on CUDA, GPU time between two events it waits for."""

    def __init__(self, device: str = "cpu") -> None:
        self.cuda = device if device.startswith("cuda") else None

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(torch.device(self.cuda))

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        if not self.cuda:
            start = time.perf_counter()
            for _ in range(runs):
                fn()
            return time.perf_counter() - start
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
    per_run, total = [], 0.0
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


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


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
    parts = _read("/sys/fs/cgroup/cpu.max").split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]) > 0:
        cpus = min(cpus, max(1, round(int(parts[0]) / int(parts[1]))))
    return max(1, cpus)


def _mhz(allowed: set[int] | None) -> float | None:
    """The mean clock of the allowed CPUs: cpufreq's scaling_cur_freq, else /proc/cpuinfo."""
    cpus = sorted(allowed) if allowed is not None else range(os.cpu_count() or 1)
    texts = [_read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq") for cpu in cpus]
    values = [int(text) / 1000.0 for text in texts if text.strip().isdigit()]  # kHz
    if not values:
        lines = _read("/proc/cpuinfo").splitlines()
        per_cpu = [line.split(":")[1] for line in lines if line.startswith("cpu MHz")]
        chosen = [v for i, v in enumerate(per_cpu) if allowed is None or i in allowed]
        with contextlib.suppress(ValueError):  # values stay []
            values = [float(v) for v in chosen]
    return statistics.fmean(values) if values else None


def sample() -> MachineSample:
    allowed = _allowed()
    rows = []  # the allowed CPUs' ticks since boot (/proc/stat)
    for line in _read("/proc/stat").splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name != "cpu":
            if allowed is None or int(name[3:]) in allowed:
                rows.append([int(v) for v in rest.split()])
    busy = steal = None
    if rows:
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        # user nice system idle iowait irq softirq steal guest guest_nice
        busy = sum(sum(v[:3]) + sum(v[5:8]) for v in rows) / tick
        steal = sum(v[7] for v in rows if len(v) > 7) / tick
    times = os.times()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    wall = time.perf_counter()
    return MachineSample(wall, times.user + times.system, busy, steal, load, _mhz(allowed))


def between(start: MachineSample, end: MachineSample) -> MachineLoad:
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
    worst = [
        max((v for x in loads if (v := getattr(x, name)) is not None), default=None)
        for name in ("other_cpus", "steal_cpus", "load_average")
    ]
    return MachineLoad(
        min(x.usable_cpus for x in loads), *worst, loads[0].mhz_start, loads[-1].mhz_end
    )


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo, else the platform module)."""
    fields: dict[str, str] = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    names = ("model name", "hardware", "model", "cpu model", "processor")
    found = (value for key in names if (value := fields.get(key, "")) and not value.isdigit())
    return next(found, "") or platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
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


@functools.cache
def _dtype_runs(device: str, dtype: str) -> str:
    """'' when a mobile network's ops run in ``dtype`` on ``device``, else why not (probed once)."""
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6()]
    layers += [nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Hardswish(), nn.AdaptiveAvgPool2d(1)]
    try:
        probe = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8, 4)).eval()
        probe = probe.to(device, TORCH_DTYPES[dtype])
        with torch.inference_mode():
            probe(torch.randn(1, 3, 8, 8, device=device, dtype=TORCH_DTYPES[dtype])) + 1
        Clock(device).sync()
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
    if settings.dtype != "fp32" and (why := _dtype_runs(device, settings.dtype)):
        raise MbprofError(
            f"dtype {settings.dtype} cannot run on {device} ({device_name(device)}): {why}; "
            "use fp32",
            field="dtype",
        )
    threads = settings.threads if settings.threads is not None else torch.get_num_threads()
    return resolved(settings, device=device, threads=threads)


@contextlib.contextmanager
def with_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_peak(
    device: str, threads: int, dtype: str, min_time_s: float = 0.5, size: int | None = None
) -> tuple[float, int]:
    """(best GFLOP/s, its n) of n x n matrix products over ``MATMUL_SIZES`` (or ``size``); dtype
    "copy": (best GB/s of a streaming copy, bytes read and written counted, bytes per buffer)."""
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


def peak_key(device: str, threads: int, dtype: str) -> str:
    where = f"{device}|{device_name(device)}|{cpu_model()}|threads={threads}"
    return f"bandwidth|{where}" if dtype == "copy" else f"{where}|{dtype}|torch {torch.__version__}"


def machine_peak_gflops(
    device: str, threads: int, dtype: str, refresh: bool = False, at_least: float | None = None
) -> float:
    """The compute ceiling for (device, threads, dtype) in GFLOP/s (dtype "copy": the memory
    ceiling in GB/s), cached: measured again when missing, refreshed or below ``at_least``."""
    path, key = cache_dir() / PEAK_FILE, peak_key(device, threads, dtype)
    unit = "gbs" if dtype == "copy" else "gflops"
    entry = _read_cache(path).get(key)
    ok = isinstance(entry, dict) and isinstance(entry.get(unit), (int, float))
    cached = float(entry[unit]) if ok else None
    if cached is not None and not refresh and (at_least is None or cached >= at_least):
        return cached
    measured, detail = measure_peak(device, threads, dtype)
    value = measured if refresh else max(measured, cached or 0.0)
    cache = _read_cache(path)  # another process may have written meanwhile
    cache[key] = {
        unit: value,
        "matmul_n" if unit == "gflops" else "copy_bytes": detail,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        f"last_measured_{unit}": measured,
    }
    with contextlib.suppress(OSError, MbprofError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(cache, indent=2, sort_keys=True))
    return value


def machine_bandwidth_gbs(device: str, threads: int, refresh: bool = False) -> float:
    """The memory ceiling for (device, threads) in GB/s, cached."""
    return machine_peak_gflops(device, threads, "copy", refresh)
