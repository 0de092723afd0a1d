"""Facts about the machine a timing was taken on: CPU model, device name, versions.

Every ``Timing`` carries an ``Environment`` built here, so that a latency figure
never travels without the hardware and software that produced it.
"""

from __future__ import annotations

import functools
import os
import platform

import torch

from mbprof.core.records import Environment
from mbprof.core.settings import LatencySettings


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo's 'model name' (x86) or 'Hardware' /
    'Model' (ARM), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            fields: dict[str, str] = {}
            for line in cpuinfo:
                key, sep, value = line.partition(":")
                if sep and value.strip():
                    fields.setdefault(key.strip().lower(), value.strip())
        for key in ("model name", "hardware", "model", "cpu model", "processor"):
            value = fields.get(key, "")
            if value and not value.isdigit():
                return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
    return os.cpu_count() or 1


def device_name(device: str) -> str:
    """The GPU's name for "cuda", the CPU model for "cpu"."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def executorch_version() -> str:
    from importlib.metadata import version

    return version("executorch")


def environment(settings: LatencySettings) -> Environment:
    """The environment of a run with resolved ``settings`` (device and threads decided)."""
    if settings.device not in ("cpu", "cuda") or settings.threads is None:
        raise ValueError("environment() needs resolved settings (see latency.resolve_settings)")
    versions = {"onnxruntime": onnxruntime_version, "executorch": executorch_version}
    backend_version = versions.get(settings.backend, lambda: torch.__version__)()
    return Environment(
        torch_version=torch.__version__,
        device=settings.device,
        device_name=device_name(settings.device),
        cpu_model=cpu_model(),
        cpu_count=cpu_count(),
        threads=settings.threads,
        backend=settings.backend,
        backend_version=backend_version,
        dtype=settings.dtype,
        batch=settings.batch,
        memory_format=settings.memory_format,
        fuse_bn=settings.fuse_bn,
        quantize=settings.quantize,
    )
