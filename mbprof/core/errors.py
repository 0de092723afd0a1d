"""Errors that mbprof raises, and real interruptions told apart from user code that tries
to end the run.

The CLI turns every ``MbprofError`` into one line on stderr and exit code 2; the Python
API lets them propagate. They subclass ``ValueError`` so that callers who do not know
mbprof still catch them as bad arguments.

A real signal (Ctrl-C, a CI runner's SIGTERM) stops a sweep and keeps its finished rows. A
user's model that raises ``SystemExit``, ``KeyboardInterrupt`` or another ``BaseException``
while being imported, built or run is an error of that model (``UserCodeExit``, one line
naming it). Both arrive as exceptions of the same types, so the signal handler installed
here records the signal before it raises: a ``KeyboardInterrupt`` with no signal recorded
came from user code. Torch-free, so that the CLI can import it for ``mbprof --help``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class MbprofError(ValueError):
    """Bad input: the message names the value and what is allowed.

    ``field`` is the setting the message starts with (``dtype``, ``min_time_s``), when it
    names one, so that the CLI can say its own flag (``--dtype``, ``--min-time``) instead."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field

    def text_with(self, names: dict[str, str]) -> str:
        """The message with its field called by ``names`` (field -> flag)."""
        text = str(self)
        if self.field in names and text.startswith(self.field):
            return names[self.field] + text[len(self.field) :]
        return text


class UnknownModelError(MbprofError, KeyError):
    """A model name that is not registered (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsError(MbprofError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class ResourceError(MbprofError):
    """A configuration that would not fit in this machine's memory."""


class ModelRunError(MbprofError, RuntimeError):
    """A model that fails while mbprof runs it (its forward raised, or it computes nothing):
    the message names the model and what mbprof was doing. A RuntimeError too, so that a
    sweep records it in the configuration's row and goes on, as for a torch failure."""


_received: int | None = None  # the signal that interrupted this run, if any
_depth = 0  # nested watch() blocks: only the outermost installs and restores


class UserCodeExit(MbprofError):
    """A model's own code raised SystemExit, KeyboardInterrupt (not a signal) or another
    BaseException: an error of that model, never the end of mbprof's run."""


def _record(signum: int, _frame: Any) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt


def received() -> int | None:
    """The signal (SIGINT, SIGTERM) that interrupted this run, or None."""
    return _received


def exit_code() -> int:
    """The shell's exit status for the interruption: 128 + the signal (130 for Ctrl-C,
    143 for SIGTERM); 130 when the signal was not seen by this module."""
    return 128 + (_received or signal.SIGINT)


def watching() -> bool:
    """Whether a KeyboardInterrupt from a real Ctrl-C is recorded (see ``watch``)."""
    return signal.getsignal(signal.SIGINT) is _record


@contextmanager
def watch(sigterm: bool = False) -> Iterator[None]:
    """Record SIGINT (and, with ``sigterm``, SIGTERM) before raising KeyboardInterrupt,
    restoring the previous handlers afterwards. Does nothing outside the main thread and
    leaves a handler the program installed itself alone: there every KeyboardInterrupt
    counts as real (a sweep stops rather than running on past a Ctrl-C)."""
    global _depth, _received
    wanted = [signal.SIGINT] + ([signal.SIGTERM] if sigterm else [])
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    if _depth == 0:
        _received = None
    for signum in wanted:
        current = signal.getsignal(signum)
        if current is _record:
            continue
        usable = current is signal.default_int_handler or (
            signum == signal.SIGTERM and current in (signal.SIG_DFL, None)
        )
        if usable:
            previous[signum] = signal.signal(signum, _record)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt (not a Ctrl-C)"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"raised {type(exc).__name__}" + (f": {first}" if first else "")


@contextmanager
def contained(model: str, doing: str) -> Iterator[None]:
    """Run user code (a model being imported, built or measured): a SystemExit, a
    KeyboardInterrupt that no signal caused, or another BaseException that is not an
    Exception becomes ``UserCodeExit`` naming ``model``. A real signal, GeneratorExit and
    ordinary exceptions pass through unchanged."""
    with watch():
        try:
            yield
        except Exception:
            raise
        except GeneratorExit:
            raise
        except BaseException as exc:
            if _received is not None:  # a real signal, whatever the user code made of it
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise KeyboardInterrupt from exc
            if isinstance(exc, KeyboardInterrupt) and not watching():
                raise  # no handler of ours: cannot tell, so it counts as a real Ctrl-C
            raise UserCodeExit(
                f"model {model!r} {_describe(exc)} while {doing}; a model's code may not "
                "end mbprof's run (raise an exception instead)"
            ) from exc
