"""mbprof's command line: each command is a thin layer over ``mbprof.api``."""

from __future__ import annotations

from mbprof.cli import (  # noqa: F401  (each registers its commands)
    check,
    compare,
    measure,
    tools,
)
from mbprof.cli._app import app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mbprof`` script and ``python -m mbprof``."""
    import signal

    if hasattr(signal, "SIGPIPE"):  # `mbprof ... | head` ends quietly, as Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return app(args=argv, standalone_mode=False)


__all__ = ["app", "main"]
