"""mbprof profile, memory and bench: one configuration measured."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from mbprof.cli import _app
from mbprof.cli import _options as cli
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_int
from mbprof.core.settings import RUNTIMES, LatencySettings, memory_settings
from mbprof.render.document import safe_text

Grouping = cli.choices("Grouping", "layer", "module", "type")


@_app.app.command("profile")
@cli.config_options
@cli.output_options
def profile_command(
    model: str = typer.Argument(
        ...,
        help="Model name (see `mbprof models`), or your own as an import path: mypkg.models:build.",
    ),
    *,
    config: dict,
    weights: Path | None = cli.WEIGHTS_OPTION,
    engine: cli.Engine = cli.ENGINE_OPTION,
    by: Grouping = cli.option(
        Grouping.layer,
        "--by GROUPING",
        "The per-layer table as it is (layer), summed per module (module, to --max-depth) "
        "or per layer type (type: depthwise convs, pointwise convs, ...).",
    ),
    max_depth: str | None = cli.option(
        None,
        "--max-depth INT",
        "Module depth of --by module, 2 unless given (features.3 is depth 2); given "
        "alone, it means --by module.",
    ),
    out: cli.Output,
) -> None:
    """Count MAdds and parameters of one configuration, in total and per layer, with its
    FLOPs in the 2-per-multiply-add convention beside them.

    Example: mbprof profile mobilenet_v2 --width 1.0 --res 224 --by type --format markdown
    """
    from mbprof.api import make_spec, profile_spec
    from mbprof.render.profile_view import check_grouping, profile_document

    grouping, depth = check_grouping(by.value, max_depth)
    result = profile_spec(make_spec(model, **config), weights=weights, engine=engine.value)
    out.emit(profile_document(result, grouping, depth))
    for line in result.missing:
        typer.echo(f"mbprof: not measured: {safe_text(line)}", err=True)
    if result.missing:
        raise typer.Exit(cli.EXIT_FAILED)


@_app.app.command("memory")
@cli.config_options
@cli.output_options
def memory_command(
    model: str = typer.Argument(..., help="Model name (see `mbprof models`)."),
    *,
    config: dict,
    dtype: str = cli.option(
        "fp16", "--dtype", "Bytes per activation element: fp16 or bf16 (2), fp32 (4), int8 (1)."
    ),
    chunks: str = cli.option(
        "channel",
        "--chunks -T",
        "T, the chunks each expanded tensor is computed in (memory-efficient mode): an "
        "integer >= 1, or 'channel' for one channel per chunk (the paper's Table 3).",
    ),
    batch: str = typer.Option("1", "--batch", "-b", help="Images per forward pass (>= 1)."),
    curve: Path | None = cli.file_option(
        "--curve",
        "Also write the live bytes at every op (both modes) to FILE.csv, or to FILE.json "
        "(the memory document, whose curve holds them).",
    ),
    measure: bool = cli.flag(
        "--measure",
        "Also run one real forward pass on the CPU in --dtype and measure its storages.",
    ),
    out: cli.Output,
) -> None:
    """Activation memory: largest tensor per spatial size, peak over one forward pass.

    Materialized and memory-efficient (inverted residuals in T chunks); image not counted.

    Example: mbprof memory mobilenet_v2 --res 224 --dtype fp16 --chunks 4
    """
    settings = memory_settings(dtype, chunks, ("--dtype", "--chunks"))
    images = parse_int(batch, "--batch")
    if measure and settings.dtype == "int8":
        raise MbprofError(
            "--measure: a real forward pass runs in fp16, bf16 or fp32, not int8; "
            "drop --measure or choose another --dtype"
        )
    if curve is not None and curve.suffix.lower() not in (".csv", ".json"):
        raise MbprofError(f"--curve: {str(curve)!r} must end in .csv or .json")
    cli.check_outputs({"--curve": curve, "--output": out.path})

    from mbprof.api import make_spec, measure_memory_spec, memory_spec
    from mbprof.render.memory_view import curve_frame, memory_document

    spec = make_spec(model, **config)
    report = memory_spec(spec, mem_dtype=settings, batch=images)
    measured = (
        measure_memory_spec(spec, mem_dtype=settings.dtype, batch=images) if measure else None
    )
    doc = memory_document(spec, report, measured)
    if curve is not None:
        # JSON: the memory document itself (kind, schema version), whose "curve" is the rows
        text = cli.render(doc, "json") if curve.suffix.lower() == ".json" else None
        cli.write_file(curve, text or curve_frame(report).to_csv(index=False, lineterminator="\n"))
    out.emit(doc)


@_app.app.command("bench")
@cli.config_options
@cli.latency_options
@cli.output_options
def bench_command(
    model: str = typer.Argument(..., help="Model name (see `mbprof models`)."),
    *,
    config: dict,
    weights: Path | None = cli.WEIGHTS_OPTION,
    latency: LatencySettings,
    layers: bool = cli.flag(
        "--layers",
        "Also where the time goes, one row per layer: time and share, MAdds, bytes "
        "moved, arithmetic intensity, achieved GFLOP/s and GB/s, the ceiling it is under "
        f"({'; '.join(f'{n}: {r.layers}' for n, r in RUNTIMES.items() if r.layers)}).",
    ),
    roofline: Path | None = cli.file_option(
        "--roofline",
        "Also draw every layer by arithmetic intensity against achieved GFLOP/s under the "
        "machine's compute and memory ceilings (.png, .svg or .pdf; implies --layers).",
    ),
    out: cli.Output,
) -> None:
    """Measure the real inference latency of one configuration on this machine: median and
    spread per batch, runs, throughput, achieved GFLOP/s and its share of the machine, and
    whether the figure is stable; with --layers, where the time goes layer by layer.

    Example: mbprof bench mobilenet_v2 --width 1.0 --res 224 --threads 2 --layers --roofline roofline.png
    """
    if roofline is not None:
        from mbprof.render.plots import check_figure_path

        check_figure_path(roofline, "--roofline")
        cli.check_outputs({"--roofline": roofline, "--output": out.path, "--html": out.html})
        layers = True
    from mbprof.api import bench_spec, make_spec, resolve_latency
    from mbprof.render.latency_view import layers_document

    settings = resolve_latency(latency)  # checked once; what this machine cannot run: exit 2
    spec = make_spec(model, **config)
    with _app.sweep_progress(1) as progress:
        progress.start(spec)
        progress.phase(f"timing {settings.backend}" + (", then per layer" if layers else ""))
        result = bench_spec(spec, settings, weights=weights, layers=layers)  # refuses compile
    env = result.timing.environment
    threads = f"{env.threads} thread{'' if env.threads == 1 else 's'}"
    title = f"{spec.label}: roofline ({env.backend}, {env.dtype}, {threads})"
    unstable = "" if result.timing.stable else "; ".join(result.timing.reasons)
    from mbprof.render.plots.roofline import plot_roofline

    draw = partial(plot_roofline, result.layers, title=title, unstable=unstable)
    if roofline is not None:
        draw(roofline)
        typer.echo(f"wrote {roofline}", err=True)
    doc = layers_document(result)
    if out.html is not None and result.layers is not None:
        from mbprof.render.html import figure_svg

        doc.figures[title] = figure_svg(draw)
    out.emit(doc)
