"""The document that `mbprof reproduce` prints: what it wrote and what it left out."""

from __future__ import annotations

from mbprof import __version__
from mbprof.render.document import Document, Fact, Table


def reproduce_document(report) -> Document:
    import pandas as pd

    frame = pd.DataFrame(
        [{"file": str(report.out / path), "holds": what} for path, what in report.files]
    )
    notes = [f"Left out: {item}." for item in report.left_out]
    return Document(
        title="mbprof reproduce",
        facts=[Fact("out", "Folder", str(report.out), "text")],
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
