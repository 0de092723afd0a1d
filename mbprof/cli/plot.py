"""mbprof plot"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import check_outputs
from mbprof.cli._options import Output, output_options


@app.command("plot")
@output_options
def plot_command(
    frame: Path = typer.Argument(
        ..., help="A comparison written by mbprof: CSV (compare --csv) or JSON.", dir_okay=False
    ),
    x: str = typer.Option(
        "madds",
        "--x",
        help="Horizontal axis: madds, params, peak_act_bytes (memory), latency_ms (latency), "
        "throughput_ips (throughput), top1, ...",
    ),
    y: str = typer.Option("top1", "--y", help="Vertical axis (same names as --x)."),
    figure: Path | None = typer.Option(
        None,
        "--figure",
        "--plot",
        "-p",
        help="Write the figure here: .png, .svg or .pdf [default: FRAME-Y-vs-X.png].",
        dir_okay=False,
    ),
    log_x: bool = typer.Option(False, "--log-x", help="Logarithmic horizontal axis."),
    log_y: bool = typer.Option(False, "--log-y", help="Logarithmic vertical axis."),
    title: str | None = typer.Option(None, "--title", help="Figure title."),
    *,
    out: Output,
) -> None:
    """Scatter one column against another, one point per configuration, with the Pareto
    frontier drawn and printed (a least-squares line when neither axis is accuracy).

    Example: mbprof plot sweep.csv --x madds --y top1 --log-x --figure pareto.png
    """
    from mbprof.render.plots import check_figure_path, resolve_axis

    x_axis, y_axis = resolve_axis(x, "--x"), resolve_axis(y, "--y")
    if figure is None:
        figure = Path(f"{frame.stem}-{y_axis.column}-vs-{x_axis.column}.png")
    check_figure_path(figure, "--figure")
    out.check()
    check_outputs({"--figure": figure, "--output": out.path}, {"FRAME": frame})

    from mbprof.frame.files import read_frame
    from mbprof.render.plots import frontier_document, plot_frame

    data = read_frame(frame)
    result = plot_frame(
        data, x_axis, y_axis, figure, log_x=log_x, log_y=log_y, title=title, where=str(frame)
    )
    typer.echo(f"wrote {figure}", err=True)
    out.emit(frontier_document(result, x_axis, y_axis, str(frame)))
