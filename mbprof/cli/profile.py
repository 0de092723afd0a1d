"""mbprof profile"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mbprof.cli._app import app
from mbprof.cli._common import exit_if_missing
from mbprof.cli._options import (
    ENGINE_OPTION,
    WEIGHTS_OPTION,
    Engine,
    Output,
    config_options,
    output_options,
)


class Grouping(str, Enum):
    layer = "layer"
    module = "module"
    type = "type"


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
    engine: Engine = ENGINE_OPTION,
    by: Grouping = typer.Option(
        Grouping.layer,
        "--by",
        metavar="GROUPING",
        help="The per-layer table as it is (layer), summed per module (module, to --max-depth) "
        "or per layer type (type: depthwise convs, pointwise convs, ...).",
    ),
    max_depth: str | None = typer.Option(
        None,
        "--max-depth",
        metavar="INT",
        help="Module depth of --by module, 2 unless given (features.3 is depth 2); given "
        "alone, it means --by module.",
    ),
    out: Output,
) -> None:
    """Count MAdds and parameters of one configuration, in total and per layer, with its
    FLOPs in the 2-per-multiply-add convention beside them.

    Example: mbprof profile mobilenet_v2 --width 1.0 --res 224 --by type --format markdown
    """
    out.check()
    from mbprof.render.profile_view import check_grouping

    grouping, depth = check_grouping(by.value, max_depth)
    from mbprof.api import make_spec, profile_spec
    from mbprof.render.profile_view import profile_document

    spec = make_spec(model, **config)
    result = profile_spec(spec, weights=weights, engine=engine.value)
    out.emit(profile_document(result, grouping, depth))
    exit_if_missing(result.missing)
