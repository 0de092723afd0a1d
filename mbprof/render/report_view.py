"""The document that `mbprof reproduce` prints: what it wrote and what it left out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    from mbprof.report.folder import ReproduceResult


def reproduce_document(result: ReproduceResult) -> Document:
    import pandas as pd

    frame = pd.DataFrame(
        [{"file": str(result.out / path), "holds": what} for path, what in result.files]
    )
    notes = [f"Left out: {item}." for item in result.left_out]
    return Document(
        kind="reproduce",
        title="mbprof reproduce",
        facts=[Fact("out", "Folder", str(result.out), "text")],
        tables=[
            Table(
                name="files",
                frame=frame,
                headers={"file": "File", "holds": "What it holds"},
                kinds={"file": "text", "holds": "text"},
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )
