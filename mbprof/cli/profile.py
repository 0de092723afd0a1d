"""mbprof profile"""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._options import WEIGHTS_OPTION, Output, config_options, output_options


@app.command("profile")
@config_options
@output_options
def profile_command(
    model: str = typer.Argument(
        ...,
        help="Model name (see `mbprof models`), or your own as an import path: mypkg.models:build.",
    ),
    *,
    config: dict,
    weights: Path | None = WEIGHTS_OPTION,
    out: Output,
) -> None:
    """Count MAdds and parameters of one configuration, in total and per layer.

    Example: mbprof profile mobilenet_v2 --width 1.0 --res 224 --format markdown
    """
    out.check()
    from mbprof.api import make_spec, profile_spec
    from mbprof.render.profile_view import profile_document

    spec = make_spec(model, **config)
    out.emit(profile_document(profile_spec(spec, weights=weights)))
