"""The document of `mbprof models`: the registered architectures and their knobs. Made
without pandas (``Rows``), so that listing names is as instant as ``--help``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Rows, Table

if TYPE_CHECKING:
    from mbprof.models import ModelInfo

COLUMNS = ("name", "family", "width", "depth", "resolution", "classes", "summary", "reference")


def models_document(infos: Sequence[ModelInfo]) -> Document:
    rows = Rows(
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
        ],
        list(COLUMNS),
    )
    return Document(
        kind="models",
        title="Registered models",
        tables=[
            Table(
                name="models",
                frame=rows,
                headers={key: key.capitalize() for key in COLUMNS},
                kinds=dict.fromkeys(COLUMNS, "text"),
                hidden_in_text=("reference",),
                secondary=("classes", "depth", "resolution", "width", "family"),
            )
        ],
        meta={"mbprof_version": __version__},
    )
