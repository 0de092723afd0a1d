"""mbprof memory"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import check_output, check_outputs
from mbprof.cli._options import Output, config_options, file_option, output_options
from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_int
from mbprof.core.settings import memory_settings

DTYPE_OPTION = typer.Option(
    "fp16", "--dtype", help="Bytes per activation element: fp16 or bf16 (2), fp32 (4), int8 (1)."
)
CHUNKS_OPTION = typer.Option(
    "channel",
    "--chunks",
    "-T",
    help="T, the chunks each expanded tensor is computed in (memory-efficient mode): an "
    "integer >= 1, or 'channel' for one channel per chunk (the paper's Table 3).",
)


@app.command("memory")
@config_options
@output_options
def memory_command(
    model: str = typer.Argument(..., help="Model name (see `mbprof models`)."),
    *,
    config: dict,
    dtype: str = DTYPE_OPTION,
    chunks: str = CHUNKS_OPTION,
    batch: str = typer.Option("1", "--batch", "-b", help="Images per forward pass (>= 1)."),
    curve: Path | None = file_option(
        "--curve",
        "Also write the live bytes at every op (both modes) to FILE.csv, or to FILE.json "
        "(the memory document, whose curve holds them).",
    ),
    measure: bool = typer.Option(
        False,
        "--measure",
        help="Also run one real forward pass on the CPU in --dtype and measure its storages.",
    ),
    out: Output,
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
    check_output(curve, "--curve")
    out.check()
    check_outputs({"--curve": curve, "--output": out.path})

    from mbprof.api import make_spec, measure_memory_spec, memory_spec
    from mbprof.render.memory_view import curve_frame, memory_document

    spec = make_spec(model, **config)
    report = memory_spec(spec, mem_dtype=settings, batch=images)
    measured = (
        measure_memory_spec(spec, mem_dtype=settings.dtype, batch=images) if measure else None
    )
    doc = memory_document(spec, report, measured)
    if curve is not None:
        from mbprof.core.files import write_atomic
        from mbprof.render.document import to_json

        # JSON: the memory document itself (kind, schema version), whose "curve" is the rows
        if curve.suffix.lower() == ".json":
            text = to_json(doc)
        else:
            text = curve_frame(report).to_csv(index=False, lineterminator="\n")
        write_atomic(curve, text)
        typer.echo(f"wrote {curve}", err=True)
    out.emit(doc)
