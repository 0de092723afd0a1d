"""A document: what a command prints, before it is rendered, and its CSV, JSON and Markdown.
User text goes through ``safe_text``, the one place that keeps it from acting on a terminal or
a CI log. Torch- and pandas-free at import (the CLI's error line uses it)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mbprof import __version__
from mbprof.core.errors import MbprofError
from mbprof.core.units import format_value
from mbprof.frame.columns import column

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Fact:
    key: str  # JSON key, e.g. "madds"
    label: str  # shown to people, e.g. "MAdds"
    value: Any
    kind: str = "auto"  # see mbprof.core.units.format_value for the kinds
    note: str = ""  # the convention, shown beside the value


@dataclass
class Table:
    name: str  # JSON key and CSV identity, e.g. "layers"
    frame: pd.DataFrame | Rows  # Rows: a small table made without pandas
    title: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # overrides mbprof.frame.columns
    kinds: dict[str, str] = field(default_factory=dict)
    hidden_in_text: tuple[str, ...] = ()  # columns left out of terminal/Markdown tables
    secondary: tuple[str, ...] = ()  # what a narrow terminal leaves out first, in order

    @property
    def text_keys(self) -> list[str]:
        """The columns terminal and Markdown show (none: a table kept for CSV/JSON only)."""
        return [k for k in self.frame.columns if k not in self.hidden_in_text]


@dataclass
class Document:
    title: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # JSON only (versions, conventions)
    kind: str = ""  # what JSON calls it, with its schema (mbprof/schema/KIND.json)
    figures: dict[str, str | bytes] = field(default_factory=dict)  # title -> SVG text or PNG (HTML)

    def __post_init__(self) -> None:
        self.meta = {"mbprof_version": __version__, **self.meta}


class Rows:
    """A small table without pandas: the one ``DataFrame`` method the renderers call."""

    def __init__(self, records: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        self.records = [dict(r) for r in records]
        self.columns = list(columns if columns is not None else (records[0] if records else []))

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:  # noqa: ARG002
        return [{k: r.get(k) for k in self.columns} for r in self.records]


# C0 controls, DEL, C1 controls, line/paragraph separators, and the bidi marks, embeddings,
# overrides and isolates (U+200E/F, U+061C, U+202A-E, U+2066-9).
_OTHERS = "\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_NEWLINES = re.compile(f"[\x00-\x09\x0b\x0c\x0e-\x1f{_OTHERS}]")  # LF, CR kept
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# `::` where a line (or a wrapped line) could start with it: at the start or after whitespace.
_COMMAND_START = re.compile(r"(^|\s)::")
LEGACY_COMMAND = "##["


def _escaped(match: re.Match[str]) -> str:
    char, code = match.group(), ord(match.group())
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def safe_text(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text that cannot control a terminal or a CI log: controls and bidi marks
    escaped, ``::`` and ``##[`` broken (``keep_newlines``: LF and CR left for the caller)."""
    text = (_UNSAFE_BUT_NEWLINES if keep_newlines else _UNSAFE).sub(_escaped, str(value))
    text = _COMMAND_START.sub(lambda m: m.group(1) + "\\::", text)
    return text.replace(LEGACY_COMMAND, "##\\[")


def safe_json(text: str) -> str:
    """JSON text whose strings cannot hold the legacy ``##[`` command."""
    return text.replace(LEGACY_COMMAND, "##\\u005b")


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


def data_frame(
    rows: Iterable[Any], columns: Sequence[str] | None = None, ints: Iterable[str] = ()
) -> pd.DataFrame:
    """A pandas frame of ``rows``; ``ints``: integer columns, empty where a row has none."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype(dict.fromkeys(ints, "Int64")) if ints else frame


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
    # json.dumps escapes control characters (and, ensure_ascii, all non-ASCII text).
    return safe_json(json.dumps(to_payload(doc), indent=2, default=str)) + "\n"


def to_csv(doc: Document) -> str:
    """The document's main (first) table with raw numbers; facts are not repeated."""
    if not doc.tables:
        raise MbprofError("this result has no table to write as CSV; use --format json")
    frame = doc.tables[0].frame
    if not hasattr(frame, "to_csv"):  # Rows: a small table made without pandas
        frame = data_frame(frame.to_dict(orient="records"), frame.columns)
    from pandas.api.types import is_object_dtype, is_string_dtype

    frame = frame.copy()  # its text (cells and column names) through safe_text
    frame.columns = [safe_text(k) if isinstance(k, str) else k for k in frame.columns]
    for index, dtype in enumerate(frame.dtypes):
        if is_object_dtype(dtype) or is_string_dtype(dtype):
            frame.isetitem(
                index, frame.iloc[:, index].map(lambda v: safe_text(v) if isinstance(v, str) else v)
            )
    return frame.to_csv(index=False, lineterminator="\n")


def text_rows(table: Table) -> tuple[list[str], list[str], list[list[str]], list[tuple]]:
    """Headers, kinds, formatted cells (through ``safe_text``) and raw values of the text."""
    keys = table.text_keys
    headers = [safe_text(table.headers.get(k, column(k).header)) for k in keys]
    kinds = [table.kinds.get(k, column(k).kind) for k in keys]
    raw = [tuple(r[k] for k in keys) for r in table.frame.to_dict(orient="records")]
    rows = [[safe_text(format_value(v, k)) for v, k in zip(r, kinds, strict=True)] for r in raw]
    return headers, kinds, rows, raw


# `<` that could open an HTML tag, comment or autolink (`<=` and `< 5` stay as written).
_HTML_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def md_text(text: str) -> str:
    """Text for a Markdown line or cell: safe, backslashes, pipes and HTML escaped."""
    text = safe_text(text).replace("\\", "\\\\").replace("|", "\\|")
    return _HTML_OPEN.sub("&lt;", text)


def markdown_grid(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[bool]
) -> str:
    """A Markdown table of text cells; ``right``: which columns align right."""
    lines = [headers, ["---:" if r else "---" for r in right], *rows]  # md_text keeps "---:"
    return "\n".join("| " + " | ".join(md_text(c) for c in line) + " |" for line in lines)


def to_markdown(doc: Document) -> str:
    """Every line starts with mbprof's own Markdown; the text in it goes through ``md_text``."""
    parts = [f"### {md_text(doc.title)}"]
    facts = [
        f"- **{md_text(f.label)}**: {md_text(format_value(f.value, f.kind))}"
        + (f" ({md_text(f.note)})" if f.note else "")
        for f in doc.facts
    ]
    if facts:
        parts.append("\n".join(facts))
    for table in doc.tables:
        if not table.text_keys:
            continue
        if table.title:
            parts.append(f"**{md_text(table.title)}**")
        headers, kinds, rows, _ = text_rows(table)
        parts.append(markdown_grid(headers, rows, [k != "text" for k in kinds]))
    if doc.notes:
        parts.append("\n".join(f"- {md_text(note)}" for note in doc.notes))
    return "\n\n".join(parts) + "\n"
