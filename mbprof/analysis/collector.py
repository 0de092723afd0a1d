"""Context managers the analyses share: the cyclic collector paused, hooks removed, loggers quiet."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off inside, back as it was after (nested uses are fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def removed_after(handles: list) -> Iterator[None]:
    """Each hook handle in ``handles`` (also those added inside) removed on the way out."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def loggers_at_error(names: Iterable[str]) -> Iterator[None]:
    levels = {logger: logger.level for logger in map(logging.getLogger, names)}
    for logger in levels:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)


@contextmanager
def quiet(
    names: tuple[str, ...] = ("torch.onnx", "onnxscript", "torch.export"),
) -> Iterator[io.StringIO]:
    """Silence the loggers ``names``, their warnings and what they print."""
    buffer = io.StringIO()
    with (
        loggers_at_error(names),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(buffer),
        contextlib.redirect_stderr(buffer),
    ):
        warnings.simplefilter("ignore")
        yield buffer


@contextmanager
def native_quiet() -> Iterator[list[str]]:
    """Silence ExecuTorch's C++ logs (fd 2), log records and warnings; yields the captured text."""
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    with tempfile.TemporaryFile() as tmp:
        for fd in (1, 2):
            os.dup2(tmp.fileno(), fd)
        try:
            # ExecuTorch and the export below it log through these
            loggers = ("torch", "torchao", "executorch", "torch.fx.experimental.symbolic_shapes")
            with quiet(loggers) as buffer:
                try:
                    yield captured
                finally:
                    captured.append(buffer.getvalue())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, old in zip((1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)
            tmp.seek(0)
            captured.insert(0, tmp.read().decode(errors="replace"))
