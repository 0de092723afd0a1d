"""mbprof reproduce"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import FORMAT_OPTION, OUTPUT_OPTION, OutputFormat, check_output, emit


@app.command("reproduce")
def reproduce_command(
    out: Path = typer.Option(
        Path("reports"),
        "--out",
        help="Folder to write (new, empty, or written by reproduce before: replaced whole).",
        file_okay=False,
    ),
    no_latency: bool = typer.Option(
        False, "--no-latency", help="Count only; skip the latency measurements."
    ),
    fmt: OutputFormat = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
) -> None:
    """Regenerate the MobileNetV2 paper's Tables 3 and 4 beside mbprof's figures, the width x
    resolution sweep as CSV, the Pareto figures and an index, in one folder.

    Example: mbprof reproduce --out reports/
    """
    check_output(output)
    from mbprof.reproduce import check_out, reproduce

    check_out(out)
    from mbprof.cli._progress import sweep_progress
    from mbprof.render.reproduce_view import reproduce_document
    from mbprof.reproduce import planned_configs

    with sweep_progress(len(planned_configs())) as advance:
        report = reproduce(out, latency=not no_latency, on_start=advance)
    emit(reproduce_document(report), fmt, output)
