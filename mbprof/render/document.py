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
    frame: pd.DataFrame
    title: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # overrides mbprof.frame.columns
    kinds: dict[str, str] = field(default_factory=dict)
    hidden_in_text: tuple[str, ...] = ()  # columns left out of terminal/Markdown tables


@dataclass
class Document:
    title: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # JSON only (versions, conventions)
