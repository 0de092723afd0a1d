"""Context managers the analyses share: the cyclic collector paused, hooks removed, loggers quiet."""

from __future__ import annotations

import gc
import logging
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
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
