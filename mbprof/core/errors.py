"""Errors that mbprof raises (``MbprofError`` is a ValueError), and real signals told apart
from user code that raises SystemExit or KeyboardInterrupt: the handler installed here records
a signal before it raises, so a KeyboardInterrupt with none recorded came from user code."""

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
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsError(MbprofError):
    """A checkpoint that is missing, unreadable or does not fit the model."""


class ResourceError(MbprofError):
    """A configuration that would not fit in this machine's memory."""


class ModelRunError(MbprofError, RuntimeError):
    """A model that fails while mbprof runs it (a RuntimeError too: a sweep records it)."""


class UserCodeExit(MbprofError):
    """A model's own code raised SystemExit, KeyboardInterrupt (not a signal) or the like."""


_received: int | None = None  # the signal that interrupted this run, if any
_depth = 0  # nested watch() blocks: only the outermost installs and restores


def _record(signum: int, _frame: Any) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt


def exit_code() -> int:
    """The shell's exit status for the interruption: 128 + the signal (130 by default)."""
    return 128 + (_received or signal.SIGINT)


@contextmanager
def watch(sigterm: bool = False) -> Iterator[None]:
    """Record SIGINT (and SIGTERM) before raising KeyboardInterrupt; a handler the program
    installed itself is left alone (there every KeyboardInterrupt counts as real)."""
    global _depth, _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    if _depth == 0:
        _received = None
    for signum in [signal.SIGINT] + ([signal.SIGTERM] if sigterm else []):
        current = signal.getsignal(signum)
        if current is signal.default_int_handler or (
            signum == signal.SIGTERM and current in (signal.SIG_DFL, None)
        ):
            previous[signum] = signal.signal(signum, _record)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def first_line(exc: BaseException, default: str = "") -> str:
    return (str(exc).strip().splitlines() or [default])[0]


@contextmanager
def contained(model: str, doing: str) -> Iterator[None]:
    """Run user code: a SystemExit, a KeyboardInterrupt no signal caused or another
    BaseException becomes ``UserCodeExit`` naming ``model``."""
    with watch():
        try:
            yield
        except (Exception, GeneratorExit):
            raise
        except BaseException as exc:
            if _received is not None:  # a real signal, whatever the user code made of it
                if isinstance(exc, KeyboardInterrupt):
                    raise
                raise KeyboardInterrupt from exc
            if (
                isinstance(exc, KeyboardInterrupt)
                and signal.getsignal(signal.SIGINT) is not _record
            ):
                raise  # no handler of ours: cannot tell, so it counts as a real Ctrl-C
            if isinstance(exc, SystemExit):
                what = f"called sys.exit({exc.code!r})"
            elif isinstance(exc, KeyboardInterrupt):
                what = "raised KeyboardInterrupt (not a Ctrl-C)"
            else:
                first = first_line(exc)
                what = f"raised {type(exc).__name__}" + (f": {first}" if first else "")
            raise UserCodeExit(
                f"model {model!r} {what} while {doing}; a model's code may not "
                "end mbprof's run (raise an exception instead)"
            ) from exc
