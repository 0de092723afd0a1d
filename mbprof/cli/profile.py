"""mbprof profile"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import (
    ARG_OPTION,
    CLASSES_OPTION,
    DEPTH_OPTION,
    FORMAT_OPTION,
    OUTPUT_OPTION,
    RES_OPTION,
    WEIGHTS_OPTION,
    WIDTH_OPTION,
    OutputFormat,
    check_output,
    emit,
    spec_options,
)


@app.command("profile")
def profile_command(
    model: str = typer.Argument(
        ...,
        help="Model name (see `mbprof models`), or your own as an import path: mypkg.models:build.",
    ),
    width: str = WIDTH_OPTION,
    depth: str = DEPTH_OPTION,
    res: str = RES_OPTION,
    classes: str = CLASSES_OPTION,
    arg: list[str] | None = ARG_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    fmt: OutputFormat = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
) -> None:
    """Count MAdds and parameters of one configuration, in total and per layer.

    Example: mbprof profile mobilenet_v2 --width 1.0 --res 224 --format markdown
    """
    spec_args = spec_options(model, width, depth, res, classes, arg)
    check_output(output)
    from mbprof.api import make_spec, profile_spec
    from mbprof.render.profile_view import profile_document

    spec = make_spec(**spec_args)
    emit(profile_document(profile_spec(spec, weights=weights)), fmt, output)
