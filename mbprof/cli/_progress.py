"""A progress bar with an ETA across a sweep, on stderr (quiet when not a terminal).

It shows the configuration being measured and its phase (counting, timing...), how
many are done, the time elapsed and an estimate of the time left; each finished
configuration leaves one line above the bar with its headline figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mbprof.core.records import ModelSpec


class SweepProgress:
    """``start(spec)`` as a configuration starts (also callable as ``progress(spec)``),
    ``phase(text)`` as its work moves on, ``done(row)`` when its row is ready."""

    def __init__(self, progress: Any, task: Any, console: Any) -> None:
        self._progress = progress
        self._task = task
        self._console = console
        self._label = ""

    def __call__(self, spec: ModelSpec) -> None:
        self.start(spec)

    def start(self, spec: ModelSpec) -> None:
        from mbprof.render.document import safe_text

        self._label = safe_text(spec.label)  # names from budget files reach the terminal
        self._progress.update(self._task, description=self._label)

    def phase(self, text: str) -> None:
        description = f"{self._label}: {text}" if self._label else text
        self._progress.update(self._task, description=description)

    def done(self, row: dict[str, Any]) -> None:
        self._progress.advance(self._task)
        if not self._console.is_terminal:
            return
        from rich.text import Text

        from mbprof.render.document import safe_text

        if row.get("error"):
            figure = Text.assemble(("failed", "red"), f": {safe_text(row['error'])}")
        elif row.get("latency_ms") is not None:
            figure = Text(f"{row['latency_ms']:,.2f} ms")
        elif row.get("madds") is not None:
            figure = Text(f"{row['madds'] / 1e6:,.2f}M MAdds")
        else:
            figure = Text("")
        self._console.print(Text.assemble(("done", "dim"), f" {self._label} ", figure))


@contextmanager
def sweep_progress(total: int) -> Iterator[SweepProgress]:
    """A ``SweepProgress`` over ``total`` configurations; the bar vanishes at the end."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # text, not markup
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("starting", total=total)
    with progress:
        yield SweepProgress(progress, task, console)
