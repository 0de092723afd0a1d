"""mbprof plot"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import check_outputs
from mbprof.cli._options import Output, output_options

DEFAULT_FIGURE = "FRAME-Y-vs-X.png"
# Extensions that say "a picture": --output FILE with one of these means the figure (those
# mbprof cannot write, .jpg say, are then refused by name instead of receiving the table).
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".eps")

TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".md", ".txt", ".html")


def figure_and_output(figure: Path | None, out: Output, default: str) -> tuple[Path, str, Output]:
    """Where the figure goes (and the option that named it) and where the frontier table
    goes. ``--output`` naming an image (.png, .svg, .pdf) is the figure's path, and the
    table then goes to the terminal; with --figure as well it would be two figures, and is
    refused."""
    import difflib

    from mbprof.core.errors import MbprofError

    suffix = out.path.suffix.lower() if out.path is not None else ""
    near = difflib.get_close_matches(suffix, IMAGE_SUFFIXES, 1)
    if near and suffix not in IMAGE_SUFFIXES + TABLE_SUFFIXES:
        # a typo of an image's extension (x.pgn) would get the frontier table, not a figure
        raise MbprofError(
            f"--output {str(out.path)!r}: {suffix} is no figure extension (did you mean "
            f"{near[0]}?); a figure is .png, .svg or .pdf"
        )
    if suffix in IMAGE_SUFFIXES:
        if figure is not None:
            raise MbprofError(
                f"--output {str(out.path)!r} names an image and --figure {str(figure)!r} "
                "another; give the figure's path once (--figure FILE), and --output a file "
                "for the frontier table in --format"
            )
        return out.path, "--output", Output(out.fmt, None, out.html)
    return (figure if figure is not None else Path(default)), "--figure", out


@app.command("plot")
@output_options
def plot_command(
    frame: Path = typer.Argument(
        ..., help="A comparison written by mbprof: CSV (compare --csv) or JSON.", dir_okay=False
    ),
    x: str = typer.Option(
        "madds",
        "--x",
        metavar="AXIS",
        help="Horizontal axis: madds, params, peak_act_bytes (memory), latency_ms (latency), "
        "throughput_ips (throughput), top1, ...",
    ),
    y: str = typer.Option("top1", "--y", metavar="AXIS", help="Vertical axis (same names as --x)."),
    figure: Path | None = typer.Option(
        None,
        "--figure",
        "--plot",
        "-p",
        metavar="FILE",
        help="Write the figure here: .png, .svg or .pdf (--output FILE.png does the same).",
        show_default=DEFAULT_FIGURE,
        dir_okay=False,
    ),
    log_x: bool = typer.Option(
        False, "--log-x", help="Logarithmic horizontal axis (ticks at 1, 2, 3 and 5 a decade)."
    ),
    log_y: bool = typer.Option(False, "--log-y", help="Logarithmic vertical axis."),
    title: str | None = typer.Option(None, "--title", metavar="TEXT", help="Figure title."),
    *,
    out: Output,
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
    default = f"{frame.stem}-{y_axis.column}-vs-{x_axis.column}.png"
    figure, option, out = figure_and_output(figure, out, default)
    check_figure_path(figure, option)
    out.check()
    check_outputs({"--figure": figure, "--output": out.path, "--html": out.html}, {"FRAME": frame})

    from mbprof.frame.rows import read_frame
    from mbprof.render.plots import frontier_document, plot_frame

    data = read_frame(frame)
    result = plot_frame(
        data, x_axis, y_axis, figure, log_x=log_x, log_y=log_y, title=title, where=str(frame)
    )
    typer.echo(f"wrote {figure}", err=True)
    doc = frontier_document(result, x_axis, y_axis, str(frame))
    if out.html is not None and figure.suffix.lower() in (".png", ".svg"):
        data = figure.read_bytes()
        doc.figures[doc.title] = data.decode() if figure.suffix.lower() == ".svg" else data
    out.emit(doc)
