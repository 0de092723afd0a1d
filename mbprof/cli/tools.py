"""mbprof models, cost, cache and reproduce: the commands around the measurements."""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli import _app
from mbprof.cli import _options as cli
from mbprof.core.parsing import parse_choice, parse_int, parse_name_list, parse_positive_float
from mbprof.core.settings import BACKENDS, spoken


@_app.app.command("models")
@cli.output_options
def models_command(
    pattern: str = typer.Argument("*", help="Shell-style filter such as 'mobilenet*'."),
    *,
    out: cli.Output,
) -> None:
    """List the registered architectures and the knobs each one takes.

    Example: mbprof models 'mobilenet*' --format markdown
    """
    from mbprof.core.errors import MbprofError
    from mbprof.models import get_model_info, list_models
    from mbprof.render.command_views import models_document

    if not (names := list_models(pattern)):
        known = ", ".join(list_models())
        raise MbprofError(
            f"no registered model matches {pattern!r}; the registered ones are {known}"
        )
    out.emit(models_document([get_model_info(n) for n in names]))


@_app.app.command("cost")
@cli.output_options
def cost_command(
    input_shape: str = typer.Option(
        ..., "--input", "-i", help="Input feature map HEIGHTxWIDTHxCHANNELS, such as 28x28x3."
    ),
    filters: str = typer.Option(..., "--filters", help="Output channels, an integer >= 1."),
    kernel: str = typer.Option("3", "--kernel", "-k", help="Kernel side K (a KxK kernel)."),
    stride: str = typer.Option("1", "--stride", "-s", help="Stride, an integer >= 1."),
    padding: str = typer.Option(
        "same",
        "--padding",
        help="same (output ceil(H/stride), TensorFlow's rule), valid (none), or pixels N "
        "added on each side.",
    ),
    *,
    out: cli.Output,
) -> None:
    """Multiplications of one KxK convolution layer, standard against depthwise-separable
    (a depthwise KxK then a pointwise 1x1), by hand from the shapes.

    Example: mbprof cost --input 28x28x3 --filters 64 --kernel 3
    """
    from mbprof.api import layer_cost
    from mbprof.render.command_views import cost_document

    out.emit(cost_document(layer_cost(input_shape, filters, kernel, stride, padding)))


@_app.app.command("cache")
@cli.output_options
def cache_command(
    action: str = typer.Argument(
        "info", help="info (the folder, its entries and their size) or clear (remove them)."
    ),
    *,
    out: cli.Output,
) -> None:
    """The result cache that compare reads and writes: counts and memory of each
    configuration (and, with --cache-latency, timings), in $MBPROF_CACHE_DIR or
    ~/.cache/mbprof/results. clear removes mbprof's entries and nothing else.

    Example: mbprof cache info
    """
    cleared = parse_choice(action, "ACTION", ("info", "clear")) == "clear"
    from mbprof.api.cache import cache_info, clear_cache
    from mbprof.render.command_views import cache_document

    out.emit(cache_document(clear_cache() if cleared else cache_info(), cleared=cleared))


@_app.app.command("reproduce")
@cli.output_options
def reproduce_command(
    folder: Path = typer.Option(
        Path("reports"),
        "--out",
        help="Folder to write: new, empty, or written by reproduce before (only the files "
        "it wrote are replaced; yours are kept).",
        file_okay=False,
    ),
    no_latency: bool = cli.flag("--no-latency", "Count only; skip the latency measurements."),
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
    out: cli.Output,
) -> None:
    """Regenerate the MobileNetV2 paper's Tables 3 and 4 beside mbprof's figures, the width x
    resolution sweep as CSV, the Pareto figures and an index, in one folder. Latency is
    measured on this machine: batch 1, fp32, batch norm folded, channels-last.

    Example: mbprof reproduce --out reports/
    """
    from mbprof.report.folder import MANIFEST, check_out
    from mbprof.report.plan import PARTS, check_parts, planned_files

    chosen = check_parts(
        PARTS if parts.strip().lower() == "all" else parse_name_list(parts, "--parts")
    )
    options = {
        "threads": parse_int(threads, "--threads"),
        "backend": backend,
        "min_time_s": parse_positive_float(min_time, "--min-time"),
    }
    check_out(folder, chosen)  # before any measuring: a file of yours is refused, never lost
    written = {
        f"--out ({name})": folder / name for name in sorted(planned_files(chosen)) + [MANIFEST]
    }
    cli.check_outputs({**written, "--output": out.path}, new=True)
    from mbprof.api.reporting import prepare_reproduce
    from mbprof.render.command_views import reproduce_document

    run = prepare_reproduce(folder, parts=chosen, latency=not no_latency, latency_options=options)
    with _app.sweep_progress(run.total) as progress:
        result = run.write(on_start=progress.start, on_done=progress.done)
    doc = reproduce_document(result)
    if out.html is not None:  # the figures it wrote, inline
        pngs = [(path, what) for path, what in result.files if str(path).endswith(".png")]
        doc.figures |= {what: (result.out / path).read_bytes() for path, what in pngs}
    out.emit(doc)
