"""Latency settings checked against this machine and resolved once ("auto" device and
threads decided; a GPU, a dtype or a backend that is not there refused in one sentence)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from mbprof.analysis.latency.environment import device_name
from mbprof.core.errors import MbprofError
from mbprof.core.settings import LatencySettings, ResolvedLatency, check_latency, resolved

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Backends that run an exported file on the CPU, fp32 in (int8 with quantize), with the
# modules each needs and the extra that installs them.
CPU_RUNTIMES = {
    "onnxruntime": (("onnxruntime", "onnx", "onnxscript"), "onnx", "ONNX Runtime"),
    "executorch": (("executorch",), "executorch", "ExecuTorch"),
}
WHAT_RUNS = {
    "onnxruntime": "an ONNX Runtime CPU session",
    "executorch": "an ExecuTorch program (XNNPACK) on the CPU",
}


def _onnx_modules_missing(names: tuple[str, ...] = CPU_RUNTIMES["onnxruntime"][0]) -> list[str]:
    import importlib

    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _probe_dtype(device: str, dtype: torch.dtype) -> None:
    """Run the ops of a mobile network once in ``dtype`` on ``device`` (raises if it cannot)."""
    probe = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()
    probe = probe.to(device=device, dtype=dtype)
    with torch.inference_mode():
        x = torch.randn(1, 3, 8, 8, device=device, dtype=dtype)
        probe(x) + 1
    if device == "cuda":
        torch.cuda.synchronize()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@functools.cache
def _dtype_runs(device: str, dtype: str) -> str:
    """'' when ``dtype`` runs on ``device``, else why not (probed once per process)."""
    try:
        _probe_dtype(device, TORCH_DTYPES[dtype])
    except RuntimeError as exc:  # also NotImplementedError (a subclass): no kernel for the dtype
        return _first_line(exc)
    return ""


def _check_cpu_runtime(settings: LatencySettings, device: str) -> None:
    """What ONNX Runtime and ExecuTorch can run here: the CPU, fp32 (int8 through
    quantize), their own memory layout, and their modules installed."""
    backend = settings.backend
    modules, extra, name = CPU_RUNTIMES[backend]
    if device != "cpu":
        raise MbprofError(
            f"backend {backend} runs {WHAT_RUNS[backend]}; use device cpu", field="backend"
        )
    if settings.dtype != "fp32":
        raise MbprofError(
            f"dtype {settings.dtype}: the {backend} backend runs fp32 models only; use fp32",
            field="dtype",
        )
    if settings.channels_last:
        raise MbprofError(
            f"channels_last applies to the eager and compile backends; {name} chooses its "
            "own memory layout"
            + (" (and reads a channels-last input wrongly)" if backend == "executorch" else ""),
            field="channels_last",
        )
    missing = _onnx_modules_missing(modules)
    if missing:
        which = "which are" if len(missing) > 1 else "which is"
        raise MbprofError(
            f"backend {backend} needs {', '.join(missing)}, {which} not installed; "
            f'install the optional extra: pip install "mbprof[{extra}]"',
            field="backend",
        )


def resolve_settings(settings: LatencySettings) -> ResolvedLatency:
    """Check ``settings`` and decide what "auto" means here: the device ("cuda" when torch
    sees a GPU, except for ONNX Runtime and ExecuTorch, which run on the CPU) and the thread count
    (torch's current one). Raises ``MbprofError`` with one sentence naming the field for
    anything this machine cannot run, before any model is built. Settings already resolved
    are returned as they are: nothing below the API checks them again."""
    if isinstance(settings, ResolvedLatency):
        return settings
    settings = check_latency(settings)  # torch-free; a no-op for checked settings
    device = settings.device
    if device == "auto":
        usable = torch.cuda.is_available() and settings.backend not in CPU_RUNTIMES
        device = "cuda" if usable else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MbprofError(
            f"device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; "
            "use cpu or auto",
            field="device",
        )
    if settings.backend in CPU_RUNTIMES:
        _check_cpu_runtime(settings, device)
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
