"""The latency options, defined once, shared by `mbprof bench` and `mbprof compare`.

The options go to ``mbprof.api.make_latency_settings`` as typed: it checks them once
(torch-free: bad numbers and names are refused before torch is imported), then resolves
them for this machine (a GPU, a dtype the device can run, ONNX Runtime being installed).
Its errors name the settings; the CLI's error policy names these flags instead.
"""

from __future__ import annotations

import typer

from mbprof.core.parsing import MAX_BATCH, MAX_MIN_TIME_S, MAX_WARMUP
from mbprof.core.settings import ResolvedLatency

DEVICE_OPTION = typer.Option(
    "auto", "--device", help="Where to run: cpu, cuda, or auto (cuda when torch sees a GPU)."
)
BATCH_OPTION = typer.Option(
    "1", "--batch", help=f"Images per forward pass, an integer from 1 to {MAX_BATCH:,}."
)
THREADS_OPTION = typer.Option(
    None,
    "--threads",
    help="Intra-op threads for every backend, an integer from 1 to the logical CPUs of this "
    "machine (default: torch's current count).",
)
DTYPE_OPTION = typer.Option("fp32", "--dtype", help="Inference dtype: fp32, fp16 or bf16.")
BACKEND_OPTION = typer.Option(
    "eager",
    "--backend",
    help=r'eager, compile (torch.compile) or onnxruntime (needs: pip install "mbprof\[onnx]").',
)
CHANNELS_LAST_OPTION = typer.Option(
    False, "--channels-last", help="Run in the channels-last (NHWC) memory format."
)
FUSE_BN_OPTION = typer.Option(
    False, "--fuse-bn", help="Fold batch norm into the convolutions first (the deployed form)."
)
MIN_TIME_OPTION = typer.Option(
    "1.0",
    "--min-time",
    help=f"Seconds of timed runs per configuration, a number > 0 and <= {MAX_MIN_TIME_S:g}.",
)
WARMUP_OPTION = typer.Option(
    "10", "--warmup", help=f"Untimed warm-up runs first, from 0 to {MAX_WARMUP:,}."
)


def latency_settings(
    device: str,
    batch: str,
    threads: str | None,
    dtype: str,
    backend: str,
    channels_last: bool,
    fuse_bn: bool,
    min_time: str,
    warmup: str,
) -> ResolvedLatency:
    """The options, checked and resolved for this machine (exit 2 for what it cannot run)."""
    from mbprof.api import make_latency_settings

    return make_latency_settings(
        device=device,
        batch=batch,  # type: ignore[arg-type]  (text as typed: checked once by the API)
        threads=threads,  # type: ignore[arg-type]
        dtype=dtype,
        backend=backend,
        channels_last=channels_last,
        fuse_bn=fuse_bn,
        min_time_s=min_time,  # type: ignore[arg-type]
        warmup=warmup,  # type: ignore[arg-type]
    )
