"""Documents as CSV, JSON and Markdown text, and files written whole or not at all."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.frame.columns import column
from mbprof.render.document import Document, Table
from mbprof.render.formats import format_value, header_and_kind
from mbprof.render.safe_text import safe_json, safe_text

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "json", "markdown")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: _jsonable(value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


# Raised when a kind's schema changes in a way a reader must know (mbprof/schema/).
SCHEMA_VERSION = 1


def to_payload(doc: Document) -> dict[str, Any]:
    """What ``to_json`` writes, as Python values."""
    columns = sorted({key for table in doc.tables for key in table.frame.columns})
    return {
        "kind": doc.kind,
        "schema_version": SCHEMA_VERSION,
        "title": doc.title,
        **doc.meta,
        "facts": {fact.key: _jsonable(fact.value) for fact in doc.facts},
        "tables": {table.name: frame_records(table.frame) for table in doc.tables},
        "columns": {key: column(key).description for key in columns if column(key).description},
        "notes": doc.notes,
    }


def to_json(doc: Document) -> str:
    payload = to_payload(doc)
    # json.dumps escapes control characters (and, ensure_ascii, all non-ASCII text).
    return safe_json(json.dumps(payload, indent=2, default=str)) + "\n"


def to_csv(doc: Document) -> str:
    """The document's main (first) table with raw numbers; facts are not repeated."""
    if not doc.tables:
        raise MbprofError("this result has no table to write as CSV; use --format json")
    frame = doc.tables[0].frame
    if not hasattr(frame, "to_csv"):  # Rows: a small table made without pandas
        import pandas as pd

        frame = pd.DataFrame(frame.to_dict(orient="records"), columns=frame.columns)
    buffer = io.StringIO()
    _safe_cells(frame).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _safe_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its text (cells and column names) through ``safe_text``: a CSV line
    is a row, so a cell may neither break it nor carry control characters."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    frame = frame.copy()
    frame.columns = [safe_text(k) if isinstance(k, str) else k for k in frame.columns]
    for index, dtype in enumerate(frame.dtypes):
        if is_object_dtype(dtype) or is_string_dtype(dtype):
            frame.isetitem(
                index, frame.iloc[:, index].map(lambda v: safe_text(v) if isinstance(v, str) else v)
            )
    return frame


def text_rows(table: Table) -> tuple[list[str], list[str], list[list[str]]]:
    """Headers, kinds and formatted cells of a table, for terminal and Markdown (each
    through ``safe_text``: one line, no control characters)."""
    keys = [k for k in table.frame.columns if k not in table.hidden_in_text]
    pairs = [header_and_kind(k, table.headers, table.kinds) for k in keys]
    rows = [
        [
            safe_text(format_value(value, kind))
            for value, (_, kind) in zip(record, pairs, strict=True)
        ]
        for record in table.frame[keys].itertuples(index=False, name=None)
    ]
    return [safe_text(h) for h, _ in pairs], [k for _, k in pairs], rows


# `<` that could open an HTML tag, comment or autolink (`<=` and `< 5` stay as written).
_HTML_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def md_text(text: str) -> str:
    """Text for a Markdown line or table cell: ``safe_text``, then a backslash before
    backslashes and pipes (a pipe would split the cell; an escaped backslash before one
    would let it) and ``&lt;`` for a ``<`` that could start HTML."""
    text = safe_text(text).replace("\\", "\\\\").replace("|", "\\|")
    return _HTML_OPEN.sub("&lt;", text)


def markdown_grid(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[bool]
) -> str:
    """A Markdown table of cells already written as text (each through ``md_text``);
    ``right`` says, column by column, which align right (numbers)."""
    align = ["---:" if r else "---" for r in right]
    lines = [
        "| " + " | ".join(md_text(h) for h in headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    headers, kinds, rows = text_rows(table)
    return markdown_grid(headers, rows, [k != "text" for k in kinds])


def to_markdown(doc: Document) -> str:
    """Every line starts with Markdown of mbprof's own (``###``, ``-``, ``**``, ``|``);
    the text in it goes through ``md_text``, so none of it can start a line."""
    parts = [f"### {md_text(doc.title)}"]
    if doc.facts:
        facts = []
        for fact in doc.facts:
            note = f" ({md_text(fact.note)})" if fact.note else ""
            value = md_text(format_value(fact.value, fact.kind))
            facts.append(f"- **{md_text(fact.label)}**: {value}{note}")
        parts.append("\n".join(facts))
    for table in doc.tables:
        if all(key in table.hidden_in_text for key in table.frame.columns):
            continue  # a table kept for CSV/JSON only
        if table.title:
            parts.append(f"**{md_text(table.title)}**")
        parts.append(markdown_table(table))
    if doc.notes:
        parts.append("\n".join(f"- {md_text(note)}" for note in doc.notes))
    return "\n\n".join(parts) + "\n"
