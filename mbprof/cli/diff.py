"""mbprof diff"""

from __future__ import annotations

import typer

from mbprof.cli._app import app
from mbprof.cli._options import Output, config_options, output_options

SIDE = (
    "A result file mbprof wrote (profile --format json, compare --json of one configuration, "
    "bench [--layers] --format json; read as data, never importing code), or a model name "
    "or import path, profiled here with the configuration options"
)


@app.command("diff")
@config_options
@output_options
def diff_command(
    before: str = typer.Argument(..., help=SIDE + "."),
    after: str = typer.Argument(..., help=SIDE + " (--width-after, ... where they differ)."),
    *,
    config: dict,
    width_after: str | None = typer.Option(
        None, "--width-after", metavar="FLOAT", help="AFTER's width, when not --width's."
    ),
    depth_after: str | None = typer.Option(
        None, "--depth-after", metavar="FLOAT", help="AFTER's depth, when not --depth's."
    ),
    res_after: str | None = typer.Option(
        None, "--res-after", metavar="RES", help="AFTER's resolution, when not --res's."
    ),
    out: Output,
) -> None:
    """What a change did, and where: AFTER minus BEFORE, in total and per layer (matched by
    module path, then by structure), per spatial size of the activations, and in time where
    both sides carry a timing (significant only beyond the noise of the two). Results
    measured with different settings or machines are compared with a warning naming them.

    Example: mbprof diff mobilenet_v2 mobilenet_v2 --res 160 --width-after 0.75 --format markdown
    """
    out.check()
    after_config = dict(config)
    for key, text, flag in (
        ("width", width_after, "--width-after"),
        ("depth", depth_after, "--depth-after"),
        ("resolution", res_after, "--res-after"),
    ):
        if text is not None:
            from mbprof.core.parsing import parse_positive_float, parse_resolution

            parse = parse_resolution if key == "resolution" else parse_positive_float
            after_config[key] = parse(text, flag)
    from mbprof.api import make_spec
    from mbprof.api.diff import diff, is_result_file, load_side
    from mbprof.render.compare_view import diff_document

    # Both sides checked (a configuration's options, a file's existence) before any is run.
    sides = [
        side if is_result_file(side) else make_spec(side, **options)
        for side, options in ((before, config), (after, after_config))
    ]
    result = diff(*[load_side(side) for side in sides])
    from mbprof.cli.compare import _warn

    for warning in result.warnings:
        _warn(warning)
    out.emit(diff_document(result))
