"""The document of `mbprof cache info` and `mbprof cache clear`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Table

if TYPE_CHECKING:
    from mbprof.api.cache import CacheInfo


def cache_document(info: CacheInfo, cleared: bool = False) -> Document:
    import pandas as pd

    count = "removed" if cleared else "entries"
    frame = pd.DataFrame([{"folder": str(info.folder), count: info.entries, "bytes": info.bytes}])
    title = "Result cache cleared" if cleared else "Result cache"
    notes = [
        "One entry per configuration and settings: counts and memory (and latency, with "
        "compare --cache-latency), keyed by everything that can change them, versions "
        "included. Set MBPROF_CACHE_DIR to keep it elsewhere; compare --no-cache skips it."
    ]
    if cleared:
        notes.append("Only mbprof's result entries are removed; nothing else in the folder.")
    return Document(
        kind="cache",
        title=title,
        tables=[
            Table(
                name="cache",
                frame=frame,
                headers={"folder": "Folder", count: count.capitalize(), "bytes": "Size"},
                kinds={"folder": "text", count: "int", "bytes": "bytes"},
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )
