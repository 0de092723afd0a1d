"""Documents as rich terminal tables, text as ``Text`` after ``safe_text`` (never markup). A
table wider than the terminal is fitted: large counts in K/M (bytes in KB), then headers on two
lines, then secondary columns left out and named in a note. No cell is ever cut."""

from __future__ import annotations

import io
import os
import textwrap

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from mbprof.core.units import format_value
from mbprof.frame.rows import is_missing
from mbprof.render.document import Document, Table, safe_text, text_rows

# Piped without COLUMNS (or written to a file): as wide as the widest line, cut nothing.
UNBOUNDED = 100_000
# A column of long text wraps, but not narrower than this (unless its longest word is).
_WRAP_FLOOR = 24


def _text(value: str, style: str = "") -> Text:
    return Text(safe_text(value), style=style)


# Printed with crop=False throughout: a line that cannot fit overflows (and a test sees
# it) rather than losing its end silently.


def _fold(header: str) -> str:
    """The header on two lines ("Latency\n(ms)"), split at the space nearest the middle."""
    if not (spaces := [i for i, c in enumerate(header) if c == " "]):
        return header
    i = min(spaces, key=lambda i: max(i, len(header) - i - 1))
    return header[:i] + "\n" + header[i + 1 :]


class _Column:
    def __init__(self, key: str, header: str, kind: str, cells: list[str]) -> None:
        self.key, self.header, self.kind, self.cells = key, header, kind, cells

    @property
    def wraps(self) -> bool:
        return self.kind == "text" and max(map(len, self.cells), default=0) > _WRAP_FLOOR

    @property
    def minimum(self) -> int:
        natural = max(len(c) for c in [*self.header.split("\n"), *self.cells])
        if not self.wraps:
            return natural
        longest = max(len(w) for c in [self.header, *self.cells] for w in c.split() or [""])
        return max(longest, min(natural, _WRAP_FLOOR))


def fitted_columns(table: Table, width: int) -> tuple[list[_Column], str]:
    """The columns of ``table`` that fit ``width`` and a note naming any left out."""
    keys = table.text_keys
    headers, kinds, rows, records = text_rows(table)
    values = {key: [r[i] for r in records] for i, key in enumerate(keys)}
    columns = [_Column(k, headers[i], kinds[i], [r[i] for r in rows]) for i, k in enumerate(keys)]

    def needed() -> int:  # cells + one space each side + the borders
        return sum(c.minimum + 3 for c in columns) + 1

    if needed() > width:
        for column in columns[1:]:
            numbers = [v for v in values[column.key] if not is_missing(v)]
            if column.kind != "int" or not numbers or (top := max(map(abs, numbers))) < 1e5:
                continue
            # Counts in K or M (bytes in KB), one decimal, the unit in the header.
            scale, unit = (1e6, "M") if top >= 1e7 else (1e3, "K")
            scale, unit = (1e3, "KB") if "bytes" in column.key else (scale, unit)
            header, spaced = f"{column.header} ({unit})", f"{column.header} "
            if unit == "KB" and " B" in spaced:  # "Tensor B" -> "Tensor KB", "Size" -> "Size (KB)"
                header = spaced.replace(" B ", " KB ").strip()
            cells = [
                "-" if is_missing(v) else "0" if v == 0 else f"{v / scale:,.1f}"
                for v in values[column.key]
            ]
            # only where that narrows the column (its header on two lines either way)
            if _Column("", _fold(header), "int", cells).minimum < (
                _Column("", _fold(column.header), "int", column.cells).minimum
            ):
                column.header, column.cells = header, cells
    if needed() > width:
        for column in columns:
            column.header = _fold(column.header)
    # The first column names the row: it goes only where the view says it may.
    order = iter([*table.secondary, *keys[:0:-1]])
    dropped: list[str] = []
    while needed() > width and len(columns) > 1:
        key = next(order)
        if gone := next((c for c in columns if c.key == key), None):
            dropped.append(gone.header.replace("\n", " "))
            columns.remove(gone)
    said = f"Left out at {width} columns: {', '.join(dropped)} (a wider terminal or COLUMNS "
    return columns, said + "shows them; --format csv or json has every column)." if dropped else ""


def _note(text: str, console: Console) -> None:
    # Wrapped with an indent, so that no line starts with a note's own words (a CI log
    # reads `::command::` at a line's start); piped without COLUMNS, one line.
    indents = {"initial_indent": "- ", "subsequent_indent": "  ", "break_on_hyphens": False}
    lines = textwrap.wrap(safe_text(text), max(console.width, 20), **indents)
    console.print(Text("\n".join(lines), style="dim"), soft_wrap=True)


def print_document(doc: Document, console: Console) -> None:
    if doc.facts:
        title = _text(doc.title, "table.title")
        facts = RichTable(title=title, show_header=False, box=None, title_justify="left")
        rows = [(f.label, format_value(f.value, f.kind), f.note) for f in doc.facts]
        label, value, note = (max(len(r[i]) for r in rows) for i in range(3))
        if label + value + min(note, _WRAP_FLOOR) + 6 > console.width:
            # A value that is text ("fp16, 2 bytes per element") wraps; a number never does.
            words = [len(w) for _, v, _ in rows for w in v.split()]  # all text: its words
            value = max((len(v) for _, v, _ in rows if " " not in v), default=max(words))
        note = max(12, min(note, console.width - label - value - 6))
        facts.add_column(style="bold", no_wrap=True, overflow="fold")
        facts.add_column(justify="right", overflow="fold", width=value)
        facts.add_column(style="dim", overflow="fold", width=note)
        for row in rows:
            facts.add_row(*map(_text, row))
        console.print(facts, crop=False)
        console.print()
    for index, table in enumerate(doc.tables):
        if not table.text_keys:
            continue  # a table kept for CSV/JSON only
        title = table.title or (doc.title if not doc.facts and index == 0 else "")
        title = _text(title, "table.title") if title else None
        grid = RichTable(title=title, title_justify="left", header_style="bold")
        columns, note = fitted_columns(table, console.width)
        for c in columns:
            justify = "left" if c.kind == "text" else "right"
            fit = {"no_wrap": not c.wraps, "overflow": "fold", "min_width": c.minimum}
            grid.add_column(Text(c.header), justify=justify, **fit)
        for row in zip(*(c.cells for c in columns), strict=True):
            grid.add_row(*(Text(cell) for cell in row))
        console.print(grid, crop=False)
        if note:
            _note(note, console)
    for note in doc.notes:
        _note(note, console)


def terminal_width(stream) -> int | None:
    """None (rich asks the terminal or COLUMNS) on a terminal or with COLUMNS; else unbounded."""
    if stream.isatty() or os.environ.get("COLUMNS", "").strip().isdigit():
        return None
    return UNBOUNDED


def render_table_text(doc: Document, width: int = UNBOUNDED) -> str:
    """The terminal rendering as plain text (for --output FILE with --format table)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    print_document(doc, console)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
