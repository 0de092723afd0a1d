"""mbprof cache"""

from __future__ import annotations

import typer

from mbprof.cli._app import app
from mbprof.cli._options import Output, output_options
from mbprof.core.parsing import parse_choice

ACTIONS = ("info", "clear")


@app.command("cache")
@output_options
def cache_command(
    action: str = typer.Argument(
        "info", help="info (the folder, its entries and their size) or clear (remove them)."
    ),
    *,
    out: Output,
) -> None:
    """The result cache that compare reads and writes: counts and memory of each
    configuration (and, with --cache-latency, timings), in $MBPROF_CACHE_DIR or
    ~/.cache/mbprof/results. clear removes mbprof's entries and nothing else.

    Example: mbprof cache info
    """
    chosen = parse_choice(action, "ACTION", ACTIONS)
    out.check()
    from mbprof.api.cache import cache_info, clear_cache
    from mbprof.render.command_views import cache_document

    if chosen == "clear":
        out.emit(cache_document(clear_cache(), cleared=True))
    else:
        out.emit(cache_document(cache_info()))
