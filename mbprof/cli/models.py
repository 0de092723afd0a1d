"""mbprof models"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import FORMAT_OPTION, OUTPUT_OPTION, OutputFormat, check_output, emit


@app.command("models")
def models_command(
    pattern: str = typer.Argument("*", help="Shell-style filter such as 'mobilenet*'."),
    fmt: OutputFormat = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
) -> None:
    """List the registered architectures and the knobs each one takes.

    Example: mbprof models 'mobilenet*' --format markdown
    """
    check_output(output)
    from mbprof.models import get_model_info, list_models
    from mbprof.render.models_view import models_document

    emit(models_document([get_model_info(n) for n in list_models(pattern)]), fmt, output)
