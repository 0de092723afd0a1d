"""Documents as rich terminal tables."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from mbprof.render.document import Document
from mbprof.render.export import text_rows
from mbprof.render.formats import format_value


def print_document(doc: Document, console: Console) -> None:
    if doc.facts:
        facts = RichTable(title=doc.title, show_header=False, box=None, title_justify="left")
        facts.add_column(style="bold")
        facts.add_column(justify="right")
        facts.add_column(style="dim")
        for fact in doc.facts:
            facts.add_row(fact.label, format_value(fact.value, fact.kind), fact.note)
        console.print(facts)
        console.print()
    for index, table in enumerate(doc.tables):
        if all(key in table.hidden_in_text for key in table.frame.columns):
            continue  # a table kept for CSV/JSON only
        title = table.title or (doc.title if not doc.facts and index == 0 else "")
        grid = RichTable(title=title or None, title_justify="left", header_style="bold")
        headers, kinds, rows = text_rows(table)
        for header, kind in zip(headers, kinds, strict=True):
            grid.add_column(header, justify="left" if kind == "text" else "right")
        for row in rows:
            grid.add_row(*(escape(cell) for cell in row))  # cells are text, not markup
        console.print(grid)
    for note in doc.notes:
        console.print(f"[dim]- {note}[/dim]", highlight=False)


def render_table_text(doc: Document, width: int = 160) -> str:
    """The terminal rendering as plain text (for --output FILE with --format table)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    print_document(doc, console)
    return console.export_text()
