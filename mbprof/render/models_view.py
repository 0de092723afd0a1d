"""The document of `mbprof models`: the registered architectures and their knobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Table

if TYPE_CHECKING:
    from mbprof.models import ModelInfo


def models_document(infos: Sequence[ModelInfo]) -> Document:
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "name": info.name,
                "family": info.family,
                "width": info.width_range,
                "depth": "yes" if info.has_depth else "1.0 only",
                "resolution": f">= {info.min_resolution}",
                "classes": ">= 1",
                "summary": info.summary,
                "reference": info.reference,
            }
            for info in infos
        ]
    )
    text = {key: "text" for key in frame.columns}
    headers = {key: key.capitalize() for key in frame.columns}
    return Document(
        title="Registered models",
        tables=[
            Table(
                name="models",
                frame=frame,
                headers=headers,
                kinds=text,
                hidden_in_text=("reference",),
            )
        ],
        meta={"mbprof_version": __version__},
    )
