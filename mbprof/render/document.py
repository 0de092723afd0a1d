"""A document: what a command prints, before it is rendered in one format or another.

Numbers stay raw here; only ``mbprof.render.formats`` turns them into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Fact:
    key: str  # JSON key, e.g. "madds"
    label: str  # shown to people, e.g. "MAdds"
    value: Any
    kind: str = "auto"  # see mbprof.frame.columns for the kinds
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


@dataclass
class Document:
    title: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # JSON only (versions, conventions)
    kind: str = ""  # what JSON calls it, with its schema (mbprof/schema/KIND.json)
    figures: dict[str, str | bytes] = field(default_factory=dict)  # title -> SVG text or PNG (HTML)


class Rows:
    """A small table's rows as plain dicts, for a document made without pandas (``mbprof
    models`` stays as instant as ``--help``): the few ``DataFrame`` methods the renderers
    call on ``Table.frame`` (``columns``, ``frame[keys]``, ``itertuples``, ``to_dict``).
    CSV export turns it into a DataFrame."""

    def __init__(self, records: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        self.records = [dict(r) for r in records]
        self.columns = list(columns if columns is not None else (records[0] if records else []))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, keys: list[str]) -> Rows:
        return Rows([{k: r.get(k) for k in keys} for r in self.records], list(keys))

    def itertuples(self, index: bool = False, name: str | None = None):  # noqa: ARG002
        return iter(tuple(r.get(k) for k in self.columns) for r in self.records)

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:
        if orient != "records":
            raise ValueError("Rows.to_dict: only orient='records'")
        return [{k: r.get(k) for k in self.columns} for r in self.records]
