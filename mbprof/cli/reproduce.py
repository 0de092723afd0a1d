"""mbprof reproduce"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import check_outputs
from mbprof.cli._options import Output, output_options
from mbprof.core.parsing import parse_int, parse_positive_float
from mbprof.core.settings import BACKENDS, spoken


@app.command("reproduce")
@output_options
def reproduce_command(
    folder: Path = typer.Option(
        Path("reports"),
        "--out",
        help="Folder to write: new, empty, or written by reproduce before (only the files "
        "it wrote are replaced; yours are kept).",
        file_okay=False,
    ),
    no_latency: bool = typer.Option(
        False, "--no-latency", help="Count only; skip the latency measurements."
    ),
    threads: str = typer.Option(
        "1", "--threads", help="Threads for the CPU latency column (1: one core, as the paper)."
    ),
    backend: str = typer.Option("eager", "--backend", help=f"Latency backend: {spoken(BACKENDS)}."),
    min_time: str = typer.Option(
        "1.0", "--min-time", help="Seconds of timed runs per configuration, at least."
    ),
    parts: str = typer.Option(
        "all",
        "--parts",
        help="Comma-separated parts to write: table4, table3, sweep, figures, phone (the "
        "phone latencies predicted by each runtime here), or all.",
    ),
    *,
    out: Output,
) -> None:
    """Regenerate the MobileNetV2 paper's Tables 3 and 4 beside mbprof's figures, the width x
    resolution sweep as CSV, the Pareto figures and an index, in one folder. Latency is
    measured on this machine: batch 1, fp32, batch norm folded, channels-last.

    Example: mbprof reproduce --out reports/
    """
    from mbprof.core.parsing import parse_name_list
    from mbprof.report.plan import PARTS, check_parts

    chosen = PARTS if parts.strip().lower() == "all" else parse_name_list(parts, "--parts")
    chosen = check_parts(chosen)
    options = {
        "threads": parse_int(threads, "--threads"),
        "backend": backend,
        "min_time_s": parse_positive_float(min_time, "--min-time"),
    }
    out.check()
    from mbprof.report.folder import MANIFEST
    from mbprof.report.plan import check_out, planned_files

    check_out(folder, chosen)  # before any measuring: a file of yours is refused, never lost
    written = {
        f"--out ({name})": folder / name for name in sorted(planned_files(chosen)) + [MANIFEST]
    }
    check_outputs({**written, "--output": out.path})
    from mbprof.api.reporting import prepare_reproduce
    from mbprof.cli._progress import sweep_progress
    from mbprof.render.command_views import reproduce_document

    run = prepare_reproduce(folder, parts=chosen, latency=not no_latency, latency_options=options)
    with sweep_progress(run.total) as progress:
        result = run.write(on_start=progress.start, on_done=progress.done)
    doc = reproduce_document(result)
    if out.html is not None:  # the figures it wrote, inline
        for path, what in result.files:
            if str(path).endswith(".png"):
                doc.figures[what] = (result.out / path).read_bytes()
    out.emit(doc)
