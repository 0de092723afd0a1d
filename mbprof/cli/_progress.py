"""A progress bar with an ETA across a sweep, on stderr (quiet when not a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mbprof.records import ModelSpec


@contextmanager
def sweep_progress(total: int) -> Iterator[Callable[[ModelSpec], None]]:
    """Yields ``advance(spec)``, to call as each configuration starts."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("measuring", total=total)
    started = 0

    def advance(spec: ModelSpec) -> None:
        nonlocal started
        if started:
            progress.advance(task)
        started += 1
        progress.update(task, description=spec.label)

    with progress:
        yield advance
        progress.update(task, completed=total)
