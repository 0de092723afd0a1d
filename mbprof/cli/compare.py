"""mbprof compare, plot and diff: configurations and results side by side."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer

from mbprof.cli import _app
from mbprof.cli import _options as cli
from mbprof.core import errors, parsing
from mbprof.core.settings import LatencySettings
from mbprof.render.document import safe_text


@_app.app.command("compare")
@cli.latency_options
@cli.output_options
def compare_command(
    models: str = cli.option(
        "mobilenet_v2",
        "--models -m",
        "Comma-separated model names, or import paths such as mypkg.models:build.",
    ),
    widths: str = cli.option("1.0", "--widths -w", "Comma-separated width multipliers."),
    depths: str = cli.option("1.0", "--depths", "Comma-separated depth multipliers."),
    res: str = cli.option(
        "224", "--res -r", "Comma-separated resolutions: 96,224 or HEIGHTxWIDTH like 160x224."
    ),
    classes: str = cli.CLASSES_OPTION,
    arg: list[str] | None = cli.ARG_OPTION,
    engine: cli.Engine = cli.ENGINE_OPTION,
    reparam: bool = cli.REPARAM_OPTION,
    csv: Path | None = cli.file_option("--csv", "Also write the table as CSV."),
    json: Path | None = cli.file_option("--json", "Also write the table as JSON."),
    markdown: Path | None = cli.file_option("--markdown", "Also write the table as Markdown."),
    accuracy: Path | None = cli.file_option(
        "--accuracy",
        "CSV of your own accuracy figures (model, width, depth, resolution, top1; "
        "optional top5, source), used before the published figures mbprof ships.",
    ),
    plot: Path | None = cli.file_option(
        "--plot", "Also draw top-1 against MAdds with the Pareto frontier (.png, .svg or .pdf)."
    ),
    mem_dtype: str = cli.option(
        "fp16",
        "--mem-dtype",
        "Activation memory columns: bytes per element, fp16/bf16 (2), fp32 (4), int8 (1).",
    ),
    chunks: str = cli.option(
        "channel",
        "--chunks",
        "T of the memory-efficient peak: an integer >= 1, or 'channel' (one per chunk).",
    ),
    no_memory: bool = cli.flag("--no-memory", "Leave out the activation memory columns."),
    workers: str | None = typer.Option(
        None,
        "--workers",
        envvar="MBPROF_WORKERS",
        help="Processes that count and analyse the configurations side by side (default: "
        "the cores available; 1 when $CI is set; 1 runs them in this process). Latency is "
        "measured afterwards, one configuration at a time, in this process.",
    ),
    executor: str = cli.option(
        "local",
        "--executor",
        "Where the analysis runs: local (worker processes on this machine) or dask "
        "(the workers of a dask.distributed cluster: give --scheduler).",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="The dask scheduler's address, such as tcp://10.0.0.5:8786."
    ),
    no_cache: bool = cli.flag(
        "--no-cache",
        envvar="MBPROF_NO_CACHE",
        help="Neither read nor write the result cache (counts and memory of each "
        "configuration, kept by mbprof: see mbprof cache info).",
    ),
    cache_latency: bool = cli.flag(
        "--cache-latency",
        "Keep timings in the result cache too, keyed by this machine's whole "
        "environment, and read them back instead of timing again.",
    ),
    *,
    latency: LatencySettings,
    no_latency: bool = cli.flag(
        "--no-latency", "Skip the latency measurement (counts and memory only)."
    ),
    out: cli.Output,
) -> None:
    """One row per (model, width, depth, resolution): MAdds, params, peak memory and latency
    on this machine side by side, with the published top-1 (and its source) where one exists.
    A list may hold ranges, start:stop:step (--widths 0.25:1.5:0.05 --res 96:256:16). Counts
    and memory are analysed in --workers processes and kept in the result cache, so that a
    repeated sweep answers at once. A configuration that fails gets an error in its row;
    Ctrl-C keeps the rows already measured in the output files.

    Example: mbprof compare --widths 0.35,0.5,1.0,1.4 --res 96,224 --threads 2 --csv sweep.csv
    """
    grid = dict(
        models=parsing.parse_name_list(models, "--models"),
        widths=parsing.parse_float_list(widths, "--widths"),
        depths=parsing.parse_float_list(depths, "--depths"),
        resolutions=parsing.parse_resolution_list(res, "--res"),
        num_classes=parsing.parse_int(classes, "--classes"),
        kwargs=dict(parsing.parse_kwargs(arg)),
        reparam=reparam,
    )
    files = {"--csv": csv, "--json": json, "--markdown": markdown}
    if plot is not None:
        from mbprof.render.plots import check_figure_path

        check_figure_path(plot, "--plot")
    outputs = {**files, "--plot": plot, "--output": out.path, "--html": out.html}
    cli.check_outputs(outputs, {"--accuracy": accuracy})
    workers = None if workers is None else parsing.parse_int(workers, "--workers")

    from mbprof.api import make_specs, prepare_compare
    from mbprof.render.compare_view import compare_document

    run = prepare_compare(
        make_specs(**grid),
        with_memory=not no_memory,
        mem_dtype=mem_dtype,
        chunks=chunks,
        latency=False if no_latency else latency,
        accuracy=accuracy if accuracy is not None else True,
        warn=_warn,
        engine=engine.value,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        cache=not no_cache,
        cache_latency=cache_latency,
    )
    if plot is not None:
        run.check_top1("--plot")
    rows: list[dict] = []
    interrupted = False
    with _app.sweep_progress(len(run.specs)) as progress:
        try:
            for row in run.rows(on_start=progress.start, on_phase=progress.phase):
                rows.append(row)
                progress.done(row)
        except KeyboardInterrupt:
            interrupted = True  # keep the rows already measured
    if interrupted and not rows:  # nothing measured: every old file stays as it was
        nothing = "mbprof: interrupted before any configuration was measured; no file written"
        typer.echo(nothing, err=True)
        raise typer.Exit(errors.exit_code())
    doc = compare_document(run.frame(rows), plot=plot, figure=out.html is not None)  # rows: 1+
    if plot is not None:
        typer.echo(f"wrote {plot}", err=True)
    for option, path in files.items():
        if path is not None:
            cli.write_file(path, cli.render(doc, option[2:]))
    out.emit(doc)
    failed = [str(row["error"]) for row in rows if row.get("error")]
    tally = f"{len(failed)} of {len(rows)} configurations failed"
    # A model whose code called sys.exit (or raised KeyboardInterrupt, not a Ctrl-C): its
    # row says so and the other rows are written, then the run fails with that one line.
    prefix = f"{errors.UserCodeExit.__name__}: "
    ended = [error.removeprefix(prefix) for error in failed if error.startswith(prefix)]
    if failed and not ended:
        typer.echo(f"mbprof: {tally} (see the error column)", err=True)
    if interrupted:
        typer.echo(
            f"mbprof: interrupted after {len(rows)} of {len(run.specs)} configurations", err=True
        )
        raise typer.Exit(errors.exit_code())  # 130 for Ctrl-C, 143 for SIGTERM
    if ended:
        raise errors.MbprofError(f"{ended[0]} ({tally}, see the error column)")
    if failed:
        raise typer.Exit(cli.EXIT_FAILED)


def _warn(text: str) -> None:
    typer.echo(f"mbprof: warning: {safe_text(text)}", err=True)


# Extensions that say "a picture": --output FILE with one of these means the figure (those
# mbprof cannot write, .jpg say, are then refused by name instead of receiving the table).
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".eps")
TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".md", ".txt", ".html")


@_app.app.command("plot")
@cli.output_options
def plot_command(
    frame: Path = typer.Argument(
        ..., help="A comparison written by mbprof: CSV (compare --csv) or JSON.", dir_okay=False
    ),
    x: str = cli.option(
        "madds",
        "--x AXIS",
        "Horizontal axis: madds, params, peak_act_bytes (memory), latency_ms (latency), "
        "throughput_ips (throughput), top1, ...",
    ),
    y: str = typer.Option("top1", "--y", metavar="AXIS", help="Vertical axis (same names as --x)."),
    figure: Path | None = cli.file_option(
        "--figure --plot -p FILE",
        "Write the figure here: .png, .svg or .pdf (--output FILE.png does the same).",
        show_default="FRAME-Y-vs-X.png",
    ),
    log_x: bool = cli.flag(
        "--log-x", "Logarithmic horizontal axis (ticks at 1, 2, 3 and 5 a decade)."
    ),
    log_y: bool = cli.flag("--log-y", "Logarithmic vertical axis."),
    title: str | None = typer.Option(None, "--title", metavar="TEXT", help="Figure title."),
    *,
    out: cli.Output,
) -> None:
    """Scatter one column against another, one point per configuration, with the Pareto
    frontier drawn and printed (a least-squares line when neither axis is accuracy).

    The figure goes to --figure FILE, or to --output FILE when FILE ends in .png, .svg or
    .pdf (by default FRAME-Y-vs-X.png in the current folder); the frontier table goes to the terminal,
    or to --output FILE in --format.

    Example: mbprof plot sweep.csv --x madds --y top1 --log-x --figure pareto.png
    """
    from mbprof.render.plots import check_figure_path, resolve_axis

    x_axis, y_axis = resolve_axis(x, "--x"), resolve_axis(y, "--y")
    suffix, option = out.path.suffix.lower() if out.path is not None else "", "--figure"
    near = difflib.get_close_matches(suffix, IMAGE_SUFFIXES, 1)
    if near and suffix not in IMAGE_SUFFIXES + TABLE_SUFFIXES:
        # a typo of an image's extension (x.pgn) would get the frontier table, not a figure
        raise errors.MbprofError(
            f"--output {str(out.path)!r}: {suffix} is no figure extension (did you mean "
            f"{near[0]}?); a figure is .png, .svg or .pdf"
        )
    if suffix in IMAGE_SUFFIXES:  # --output FILE.png: the figure, and the table to stdout
        if figure is not None:
            raise errors.MbprofError(
                f"--output {str(out.path)!r} names an image and --figure {str(figure)!r} "
                "another; give the figure's path once (--figure FILE), and --output a file "
                "for the frontier table in --format"
            )
        figure, option, out = out.path, "--output", cli.Output(out.fmt, None, out.html)
    figure = figure or Path(f"{frame.stem}-{y_axis.column}-vs-{x_axis.column}.png")
    check_figure_path(figure, option)
    cli.check_outputs(
        {"--figure": figure, "--output": out.path, "--html": out.html}, {"FRAME": frame}
    )

    from mbprof.frame.rows import read_frame
    from mbprof.render.plots import frontier_document, plot_frame

    data = read_frame(frame)
    result = plot_frame(
        data, x_axis, y_axis, figure, log_x=log_x, log_y=log_y, title=title, where=str(frame)
    )
    typer.echo(f"wrote {figure}", err=True)
    doc = frontier_document(result, x_axis, y_axis, str(frame))
    if out.html is not None and (suffix := figure.suffix.lower()) in (".png", ".svg"):
        data = figure.read_bytes()
        doc.figures[doc.title] = data.decode() if suffix == ".svg" else data
    out.emit(doc)


SIDE = (
    "A result file mbprof wrote (profile --format json, compare --json of one configuration, "
    "bench [--layers] --format json; read as data, never importing code), or a model name "
    "or import path, profiled here with the configuration options"
)


@_app.app.command("diff")
@cli.config_options
@cli.output_options
def diff_command(
    before: str = typer.Argument(..., help=SIDE + "."),
    after: str = typer.Argument(..., help=SIDE + " (--width-after, ... where they differ)."),
    *,
    config: dict,
    width_after: str | None = typer.Option(
        None, "--width-after", metavar="FLOAT", help="AFTER's width, when not --width's."
    ),
    depth_after: str | None = typer.Option(
        None, "--depth-after", metavar="FLOAT", help="AFTER's depth, when not --depth's."
    ),
    res_after: str | None = typer.Option(
        None, "--res-after", metavar="RES", help="AFTER's resolution, when not --res's."
    ),
    out: cli.Output,
) -> None:
    """What a change did, and where: AFTER minus BEFORE, in total and per layer (matched by
    module path, then by structure), per spatial size of the activations, and in time where
    both sides carry a timing (significant only beyond the noise of the two). Results
    measured with different settings or machines are compared with a warning naming them.

    Example: mbprof diff mobilenet_v2 mobilenet_v2 --res 160 --width-after 0.75 --format markdown
    """
    after_config = dict(config)
    for key, parse, text, option in (
        ("width", parsing.parse_positive_float, width_after, "--width-after"),
        ("depth", parsing.parse_positive_float, depth_after, "--depth-after"),
        ("resolution", parsing.parse_resolution, res_after, "--res-after"),
    ):
        if text is not None:
            after_config[key] = parse(text, option)
    from mbprof.api import make_spec
    from mbprof.api.diff import diff, is_result_file, load_side
    from mbprof.render.compare_view import diff_document

    # Both sides checked (a configuration's options, a file's existence) before any is run.
    sides = [
        side if is_result_file(side) else make_spec(side, **options)
        for side, options in ((before, config), (after, after_config))
    ]
    result = diff(*[load_side(side) for side in sides])
    for warning in result.warnings:
        _warn(warning)
    out.emit(diff_document(result))
