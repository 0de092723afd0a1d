"""mbprof bench"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._options import (
    WEIGHTS_OPTION,
    Output,
    config_options,
    file_option,
    latency_options,
    output_options,
)
from mbprof.core.settings import RUNTIMES, LatencySettings


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
    layers: bool = typer.Option(
        False,
        "--layers",
        help="Also where the time goes, one row per layer: time and share, MAdds, bytes "
        "moved, arithmetic intensity, achieved GFLOP/s and GB/s, the ceiling it is under "
        f"({'; '.join(f'{n}: {r.layers}' for n, r in RUNTIMES.items() if r.layers)}).",
    ),
    roofline: Path | None = file_option(
        "--roofline",
        "Also draw every layer by arithmetic intensity against achieved GFLOP/s under the "
        "machine's compute and memory ceilings (.png, .svg or .pdf; implies --layers).",
    ),
    out: Output,
) -> None:
    """Measure the real inference latency of one configuration on this machine: median and
    spread per batch, runs, throughput, achieved GFLOP/s and its share of the machine, and
    whether the figure is stable; with --layers, where the time goes layer by layer.

    Example: mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2 --layers --roofline roofline.png
    """
    out.check()
    if roofline is not None:
        from mbprof.cli._common import check_outputs
        from mbprof.render.plots import check_figure_path

        check_figure_path(roofline, "--roofline")
        check_outputs({"--roofline": roofline, "--output": out.path, "--html": out.html}, {})
        layers = True
    from mbprof.api import bench_spec, make_spec, resolve_latency
    from mbprof.cli._progress import sweep_progress
    from mbprof.render.latency_view import layers_document

    settings = resolve_latency(latency)  # checked once; what this machine cannot run: exit 2
    spec = make_spec(model, **config)
    with sweep_progress(1) as progress:
        progress.start(spec)
        progress.phase(f"timing {settings.backend}" + (", then per layer" if layers else ""))
        result = bench_spec(spec, settings, weights=weights, layers=layers)  # refuses compile
    env = result.timing.environment
    threads = f"{env.threads} thread{'' if env.threads == 1 else 's'}"
    title = f"{spec.label}: roofline ({env.backend}, {env.dtype}, {threads})"
    unstable = "" if result.timing.stable else "; ".join(result.timing.reasons)
    if roofline is not None:
        from mbprof.render.plots.roofline import plot_roofline

        plot_roofline(result.layers, roofline, title, unstable)
        typer.echo(f"wrote {roofline}", err=True)
    doc = layers_document(result)
    if out.html is not None and result.layers is not None:
        from mbprof.render.html import figure_svg
        from mbprof.render.plots.roofline import plot_roofline

        doc.figures[title] = figure_svg(
            lambda path: plot_roofline(result.layers, path, title, unstable)
        )
    out.emit(doc)
