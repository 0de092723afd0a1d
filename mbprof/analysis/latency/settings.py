"""Latency settings checked against this machine and resolved once ("auto" device and
threads decided; a GPU, a dtype or a backend that is not there refused in one sentence)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from mbprof.analysis.latency.environment import device_name
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import check_latency_settings
from mbprof.core.records import LatencySettings

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ONNX_EXTRA_HINT = 'install the optional extra: pip install "mbprof[onnx]"'


def _onnx_modules_missing() -> list[str]:
    import importlib

    missing = []
    for name in ("onnxruntime", "onnx", "onnxscript"):
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


def resolve_settings(settings: LatencySettings) -> LatencySettings:
    """Check ``settings`` and decide what "auto" means here: the device ("cuda" when torch
    sees a GPU, except for ONNX Runtime, which runs on the CPU) and the thread count
    (torch's current one). Raises ``MbprofError`` with one sentence for anything this
    machine cannot run, before any model is built."""
    settings = check_latency_settings(settings)
    device = settings.device
    if device == "auto":
        usable = torch.cuda.is_available() and settings.backend != "onnxruntime"
        device = "cuda" if usable else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MbprofError(
            f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; "
            "use --device cpu or --device auto"
        )
    if settings.backend == "onnxruntime":
        if device != "cpu":
            raise MbprofError(
                "--backend onnxruntime runs an ONNX Runtime CPU session; use --device cpu"
            )
        if settings.dtype != "fp32":
            raise MbprofError(
                f"--dtype {settings.dtype}: the onnxruntime backend runs fp32 models only; "
                "use --dtype fp32"
            )
        if settings.channels_last:
            raise MbprofError(
                "--channels-last applies to the eager and compile backends; ONNX Runtime "
                "chooses its own memory layout"
            )
        missing = _onnx_modules_missing()
        if missing:
            raise MbprofError(
                f"--backend onnxruntime needs {', '.join(missing)}, {'which are' if len(missing) > 1 else 'which is'} not installed; "
                + ONNX_EXTRA_HINT
            )
    dtype = TORCH_DTYPES[settings.dtype]
    if device == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise MbprofError(
            f"--dtype bf16: {device_name('cuda')} does not support bfloat16; use fp16 or fp32"
        )
    if dtype is not torch.float32:
        try:
            _probe_dtype(device, dtype)
        except (RuntimeError, NotImplementedError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MbprofError(
                f"--dtype {settings.dtype} cannot run on {device} ({device_name(device)}): "
                f"{first}; use --dtype fp32"
            ) from None
    threads = settings.threads if settings.threads is not None else torch.get_num_threads()
    return replace(settings, device=device, threads=threads)
