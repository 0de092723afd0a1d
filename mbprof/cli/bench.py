"""mbprof bench"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import (
    ARG_OPTION,
    CLASSES_OPTION,
    DEPTH_OPTION,
    FORMAT_OPTION,
    OUTPUT_OPTION,
    RES_OPTION,
    WEIGHTS_OPTION,
    WIDTH_OPTION,
    OutputFormat,
    check_output,
    emit,
    spec_options,
)
from mbprof.cli._latency_options import (
    BACKEND_OPTION,
    BATCH_OPTION,
    CHANNELS_LAST_OPTION,
    DEVICE_OPTION,
    DTYPE_OPTION,
    FUSE_BN_OPTION,
    MIN_TIME_OPTION,
    THREADS_OPTION,
    WARMUP_OPTION,
    latency_settings,
)


@app.command("bench")
def bench_command(
    model: str = typer.Argument(..., help="Model name (see `mbprof models`)."),
    width: str = WIDTH_OPTION,
    depth: str = DEPTH_OPTION,
    res: str = RES_OPTION,
    classes: str = CLASSES_OPTION,
    arg: list[str] | None = ARG_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    device: str = DEVICE_OPTION,
    batch: str = BATCH_OPTION,
    threads: str | None = THREADS_OPTION,
    dtype: str = DTYPE_OPTION,
    backend: str = BACKEND_OPTION,
    channels_last: bool = CHANNELS_LAST_OPTION,
    fuse_bn: bool = FUSE_BN_OPTION,
    min_time: str = MIN_TIME_OPTION,
    warmup: str = WARMUP_OPTION,
    fmt: OutputFormat = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
) -> None:
    """Measure the real inference latency of one configuration on this machine: median and
    spread per batch, runs, throughput, achieved GFLOP/s and its share of the machine.

    Example: mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2 --fuse-bn --channels-last
    """
    spec_args = spec_options(model, width, depth, res, classes, arg)
    check_output(output)
    from mbprof.api import bench_spec, make_spec
    from mbprof.cli._progress import sweep_progress
    from mbprof.render.latency_view import bench_document

    settings = latency_settings(
        device, batch, threads, dtype, backend, channels_last, fuse_bn, min_time, warmup
    )
    spec = make_spec(**spec_args)
    with sweep_progress(1) as progress:
        progress.start(spec)
        progress.phase(f"timing {settings.backend}")
        result = bench_spec(spec, settings, weights=weights)
    emit(bench_document(result), fmt, output)
