"""Documents as rich terminal tables.

Every piece of text goes in as a rich ``Text`` (never parsed as markup) after
``safe_text``: a name from a user's file can neither style, move nor clear the terminal.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from mbprof.render.document import Document
from mbprof.render.export import text_rows
from mbprof.render.formats import format_value
from mbprof.render.safe_text import safe_text


def _text(value: str, style: str = "") -> Text:
    return Text(safe_text(value), style=style)


def print_document(doc: Document, console: Console) -> None:
    if doc.facts:
        facts = RichTable(
            title=_text(doc.title, "table.title"), show_header=False, box=None, title_justify="left"
        )
        facts.add_column(style="bold")
        facts.add_column(justify="right")
        facts.add_column(style="dim")
        for fact in doc.facts:
            value = format_value(fact.value, fact.kind)
            facts.add_row(_text(fact.label), _text(value), _text(fact.note))
        console.print(facts)
        console.print()
    for index, table in enumerate(doc.tables):
        if all(key in table.hidden_in_text for key in table.frame.columns):
            continue  # a table kept for CSV/JSON only
        title = table.title or (doc.title if not doc.facts and index == 0 else "")
        grid = RichTable(
            title=_text(title, "table.title") if title else None,
            title_justify="left",
            header_style="bold",
        )
        headers, kinds, rows = text_rows(table)  # already through safe_text
        for header, kind in zip(headers, kinds, strict=True):
            grid.add_column(Text(header), justify="left" if kind == "text" else "right")
        for row in rows:
            grid.add_row(*(Text(cell) for cell in row))
        console.print(grid)
    for note in doc.notes:
        # Piped (a CI log), a note stays one line: a line folded inside a long word could
        # start with the word's tail, and a log reads `::command::` at a line's start.
        console.print(_text(f"- {note}", style="dim"), soft_wrap=not console.is_terminal)


def render_table_text(doc: Document, width: int = 160) -> str:
    """The terminal rendering as plain text (for --output FILE with --format table)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    print_document(doc, console)
    return console.export_text()
