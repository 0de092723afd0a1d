"""mbprof models"""

from __future__ import annotations

import typer

from mbprof.cli._app import app
from mbprof.cli._options import Output, output_options


@app.command("models")
@output_options
def models_command(
    pattern: str = typer.Argument("*", help="Shell-style filter such as 'mobilenet*'."),
    *,
    out: Output,
) -> None:
    """List the registered architectures and the knobs each one takes.

    Example: mbprof models 'mobilenet*' --format markdown
    """
    out.check()
    from mbprof.core.errors import MbprofError
    from mbprof.models import get_model_info, list_models
    from mbprof.render.command_views import models_document

    names = list_models(pattern)
    if not names:
        raise MbprofError(
            f"no registered model matches {pattern!r}; the registered ones are "
            + ", ".join(list_models())
        )
    out.emit(models_document([get_model_info(n) for n in names]))
