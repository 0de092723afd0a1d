"""mbprof bench"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._options import (
    WEIGHTS_OPTION,
    Output,
    config_options,
    latency_options,
    output_options,
)
from mbprof.core.settings import LatencySettings


@app.command("bench")
@config_options
@latency_options
@output_options
def bench_command(
    model: str = typer.Argument(..., help="Model name (see `mbprof models`)."),
    *,
    config: dict,
    weights: Path | None = WEIGHTS_OPTION,
    latency: LatencySettings,
    out: Output,
) -> None:
    """Measure the real inference latency of one configuration on this machine: median and
    spread per batch, runs, throughput, achieved GFLOP/s and its share of the machine.

    Example: mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2 --fuse-bn --channels-last
    """
    out.check()
    from mbprof.api import bench_spec, make_spec, resolve_latency
    from mbprof.cli._progress import sweep_progress
    from mbprof.render.latency_view import bench_document

    settings = resolve_latency(latency)  # checked once; what this machine cannot run: exit 2
    spec = make_spec(model, **config)
    with sweep_progress(1) as progress:
        progress.start(spec)
        progress.phase(f"timing {settings.backend}")
        result = bench_spec(spec, settings, weights=weights)
    out.emit(bench_document(result))
