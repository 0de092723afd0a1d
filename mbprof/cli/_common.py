"""The one way results leave a command (``emit``), and the checks of output paths made
before any work."""

from __future__ import annotations

from pathlib import Path

import typer

from mbprof.cli._app import results_stream
from mbprof.render.document import Document


def check_output(output: Path | None, option: str = "--output") -> None:
    if output is not None:
        from mbprof.core.files import check_writable

        check_writable(output, option)


def _identity(path: Path) -> tuple | None:
    """What ``path`` writes to: an existing file's inode (hard and symbolic links agree),
    a new file's resolved path; None for a device or FIFO (writes go through, none
    replaces another)."""
    import os
    import stat

    try:
        found = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    if not stat.S_ISREG(found.st_mode):
        return None
    return ("inode", found.st_dev, found.st_ino)


def check_outputs(
    outputs: dict[str, Path | None], inputs: dict[str, Path | None] | None = None
) -> None:
    """Refuse, before any work, two options that would write the same file (one would
    overwrite the other) and an output that would overwrite an input. Keys are the
    options as the user wrote them (``--csv``), values their paths or None."""
    from mbprof.core.errors import MbprofError

    seen: dict[tuple, tuple[str, Path]] = {}
    for option, path in (inputs or {}).items():
        if path is not None and (key := _identity(Path(path))) is not None:
            seen.setdefault(key, (option, Path(path)))
    readers = {option for option, _ in seen.values()}
    for option, path in outputs.items():
        if path is None or (key := _identity(Path(path))) is None:
            continue
        if key in seen:
            other, first = seen[key]
            both = (
                f"{other} and {option} name the same file {str(path)!r}"
                if str(first) == str(path)
                else f"{other} {str(first)!r} and {option} {str(path)!r} are the same file"
            )
            if other in readers:
                raise MbprofError(f"{both}: {option} would overwrite what mbprof reads")
            raise MbprofError(f"{both}; give each output its own path")
        seen[key] = (option, Path(path))


def render(doc: Document, fmt: str) -> str:
    from mbprof.render import document as export

    if fmt == "csv":
        return export.to_csv(doc)
    if fmt == "json":
        return export.to_json(doc)
    if fmt == "markdown":
        return export.to_markdown(doc)
    from mbprof.render.console import render_table_text

    return render_table_text(doc)


def emit(doc: Document, fmt: str, output: Path | None = None) -> None:
    """Print ``doc`` in ``fmt`` on the real stdout (user code's prints go to stderr),
    or write it whole to ``output``."""
    if output is not None:
        from mbprof.core.files import write_atomic
        from mbprof.render.document import safe_text

        write_atomic(output, render(doc, fmt))
        typer.echo(f"wrote {safe_text(output)}", err=True)
        return
    stdout = results_stream()
    if fmt == "table":
        from rich.console import Console

        from mbprof.render.console import print_document, terminal_width

        print_document(doc, Console(file=stdout, width=terminal_width(stdout)))
        return
    stdout.write(render(doc, fmt))


# One exit-code rule for every command: 0 when every figure asked for was measured (and,
# for `check`, every limit holds); 1 when a figure could not be had (the others are
# printed, each missing one named on stderr in one line) or a limit is exceeded; 2 for bad
# input or when nothing could be measured; 130 / 143 when interrupted.
EXIT_MISSING = 1


def exit_if_missing(missing: tuple[str, ...] | list[str]) -> None:
    from mbprof.render.document import safe_text

    for line in missing:
        typer.echo(f"mbprof: not measured: {safe_text(line)}", err=True)
    if missing:
        raise typer.Exit(EXIT_MISSING)
