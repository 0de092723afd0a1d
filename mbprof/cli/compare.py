"""mbprof compare"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import EXIT_MISSING, check_output, check_outputs, render
from mbprof.cli._options import (
    ARG_OPTION,
    CLASSES_OPTION,
    ENGINE_OPTION,
    REPARAM_OPTION,
    Engine,
    Output,
    OutputFormat,
    file_option,
    latency_options,
    output_options,
)
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import (
    parse_float_list,
    parse_int,
    parse_kwargs,
    parse_name_list,
    parse_resolution_list,
)
from mbprof.core.settings import LatencySettings


@app.command("compare")
@latency_options
@output_options
def compare_command(
    models: str = typer.Option(
        "mobilenet_v2",
        "--models",
        "-m",
        help="Comma-separated model names, or import paths such as mypkg.models:build.",
    ),
    widths: str = typer.Option("1.0", "--widths", "-w", help="Comma-separated width multipliers."),
    depths: str = typer.Option("1.0", "--depths", help="Comma-separated depth multipliers."),
    res: str = typer.Option(
        "224",
        "--res",
        "-r",
        help="Comma-separated resolutions: 96,224 or HEIGHTxWIDTH like 160x224.",
    ),
    classes: str = CLASSES_OPTION,
    arg: list[str] | None = ARG_OPTION,
    engine: Engine = ENGINE_OPTION,
    reparam: bool = REPARAM_OPTION,
    csv: Path | None = file_option("--csv", "Also write the table as CSV."),
    json: Path | None = file_option("--json", "Also write the table as JSON."),
    markdown: Path | None = file_option("--markdown", "Also write the table as Markdown."),
    accuracy: Path | None = file_option(
        "--accuracy",
        "CSV of your own accuracy figures (model, width, depth, resolution, top1; "
        "optional top5, source), used before the published figures mbprof ships.",
    ),
    plot: Path | None = file_option(
        "--plot", "Also draw top-1 against MAdds with the Pareto frontier (.png, .svg or .pdf)."
    ),
    mem_dtype: str = typer.Option(
        "fp16",
        "--mem-dtype",
        help="Activation memory columns: bytes per element, fp16/bf16 (2), fp32 (4), int8 (1).",
    ),
    chunks: str = typer.Option(
        "channel",
        "--chunks",
        help="T of the memory-efficient peak: an integer >= 1, or 'channel' (one per chunk).",
    ),
    no_memory: bool = typer.Option(
        False, "--no-memory", help="Leave out the activation memory columns."
    ),
    workers: str | None = typer.Option(
        None,
        "--workers",
        envvar="MBPROF_WORKERS",
        help="Processes that count and analyse the configurations side by side (default: "
        "the cores available; 1 when $CI is set; 1 runs them in this process). Latency is "
        "measured afterwards, one configuration at a time, in this process.",
        show_default=False,
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="Where the analysis runs: local (worker processes on this machine) or dask "
        "(the workers of a dask.distributed cluster: give --scheduler).",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="The dask scheduler's address, such as tcp://10.0.0.5:8786."
    ),
    no_cache: bool = typer.Option(
        False,
        "--no-cache",
        envvar="MBPROF_NO_CACHE",
        help="Neither read nor write the result cache (counts and memory of each "
        "configuration, kept by mbprof: see mbprof cache info).",
    ),
    cache_latency: bool = typer.Option(
        False,
        "--cache-latency",
        help="Keep timings in the result cache too, keyed by this machine's whole "
        "environment, and read them back instead of timing again.",
    ),
    *,
    latency: LatencySettings,
    no_latency: bool = typer.Option(
        False, "--no-latency", help="Skip the latency measurement (counts and memory only)."
    ),
    out: Output,
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
        models=parse_name_list(models, "--models"),
        widths=parse_float_list(widths, "--widths"),
        depths=parse_float_list(depths, "--depths"),
        resolutions=parse_resolution_list(res, "--res"),
        num_classes=parse_int(classes, "--classes"),
        kwargs=dict(parse_kwargs(arg)),
        reparam=reparam,
    )
    files = {OutputFormat.csv: csv, OutputFormat.json: json, OutputFormat.markdown: markdown}
    for kind, path in files.items():
        check_output(path, f"--{kind.value}")
    out.check()
    if plot is not None:
        from mbprof.render.plots import check_figure_path

        check_figure_path(plot, "--plot")
    outputs = {f"--{kind.value}": path for kind, path in files.items()}
    outputs |= {"--plot": plot, "--output": out.path, "--html": out.html}
    check_outputs(outputs, {"--accuracy": accuracy})
    pool = dict(
        workers=None if workers is None else parse_int(workers, "--workers"),
        executor=executor,
        scheduler=scheduler,
        cache=not no_cache,
        cache_latency=cache_latency,
    )

    from mbprof.api import make_specs, prepare_compare
    from mbprof.cli._progress import sweep_progress
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
        **pool,
    )
    if plot is not None:
        run.check_top1("--plot")
    specs = run.specs
    rows: list[dict] = []
    interrupted = False
    with sweep_progress(len(specs)) as progress:
        try:
            for row in run.rows(on_start=progress.start, on_phase=progress.phase):
                rows.append(row)
                progress.done(row)
        except KeyboardInterrupt:
            interrupted = True  # keep the rows already measured
    from mbprof.core import errors

    if interrupted and not rows:  # nothing measured: every old file stays as it was
        typer.echo(
            "mbprof: interrupted before any configuration was measured; no file written",
            err=True,
        )
        raise typer.Exit(errors.exit_code())
    frame = run.frame(rows)
    doc = compare_document(frame)
    if plot is not None and rows:
        from mbprof.render.plots import AXES, frontier_document, plot_frame

        result = plot_frame(frame, AXES["madds"], AXES["top1"], plot, log_x=True)
        typer.echo(f"wrote {plot}", err=True)
        front = frontier_document(result, AXES["madds"], AXES["top1"], "this comparison")
        doc.tables.append(front.tables[0])
        doc.tables[-1].title = front.title
    if out.html is not None and rows:
        from mbprof.render.html import figure_svg
        from mbprof.render.plots import AXES, plot_frame

        try:  # the Pareto plot, where rows have a published top-1
            doc.figures["Top-1 against MAdds, Pareto frontier"] = figure_svg(
                lambda path: plot_frame(frame, AXES["madds"], AXES["top1"], path, log_x=True)
            )
        except MbprofError:
            doc.notes.append("No Pareto plot: no row has a top-1 figure.")
    from mbprof.core.files import write_atomic

    for kind, path in files.items():
        if path is not None:
            write_atomic(path, render(doc, kind))
            typer.echo(f"wrote {path}", err=True)
    out.emit(doc)
    failed = sum(1 for row in rows if row.get("error"))
    # A model whose code called sys.exit (or raised KeyboardInterrupt, not a Ctrl-C): its
    # row says so and the other rows are written, then the run fails with that one line.
    prefix = f"{errors.UserCodeExit.__name__}: "
    ended = [r["error"][len(prefix) :] for r in rows if str(r.get("error")).startswith(prefix)]
    if failed and not ended:
        typer.echo(
            f"mbprof: {failed} of {len(rows)} configurations failed (see the error column)",
            err=True,
        )
    if interrupted:
        typer.echo(
            f"mbprof: interrupted after {len(rows)} of {len(specs)} configurations", err=True
        )
        raise typer.Exit(errors.exit_code())  # 130 for Ctrl-C, 143 for SIGTERM
    if ended:
        raise MbprofError(
            f"{ended[0]} ({failed} of {len(rows)} configurations failed, see the error column)"
        )
    if failed:
        raise typer.Exit(EXIT_MISSING)


def _warn(text: str) -> None:
    from mbprof.render.document import safe_text

    typer.echo(f"mbprof: warning: {safe_text(text)}", err=True)
