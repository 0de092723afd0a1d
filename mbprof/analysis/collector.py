"""Python's cyclic garbage collector paused while an analysis runs.

Counting, tracing and building a model make many thousands of small objects (fvcore's
per-module counters, the trace's nodes and values, a model's modules). Each time they pass
the collector's threshold it walks the objects alive, a model and fvcore's graph included:
about a tenth of a configuration's counting (``benchmarks/counting_speed.py``). These
objects hold no reference cycles worth collecting mid-analysis; reference counting frees
them as before, and the collector runs again once the analysis ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
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
