"""Documents as CSV, JSON and Markdown text, and files written whole or not at all."""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
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


def to_json(doc: Document) -> str:
    columns = sorted({key for table in doc.tables for key in table.frame.columns})
    payload = {
        "title": doc.title,
        **doc.meta,
        "facts": {fact.key: _jsonable(fact.value) for fact in doc.facts},
        "tables": {table.name: frame_records(table.frame) for table in doc.tables},
        "columns": {key: column(key).description for key in columns if column(key).description},
        "notes": doc.notes,
    }
    # json.dumps escapes control characters (and, ensure_ascii, all non-ASCII text).
    return safe_json(json.dumps(payload, indent=2, default=str)) + "\n"


def to_csv(doc: Document) -> str:
    """The document's main (first) table with raw numbers; facts are not repeated."""
    if not doc.tables:
        raise MbprofError("this result has no table to write as CSV; use --format json")
    buffer = io.StringIO()
    _safe_cells(doc.tables[0].frame).to_csv(buffer, index=False, lineterminator="\n")
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


def _existing(path: Path) -> os.stat_result | None:
    """``path``'s status, links followed (None when nothing is there yet)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # its folder is checked by the caller
        return None


_DESCRIPTOR = re.compile(r"/(proc/(self|thread-self|\d+)/fd|dev/fd)/\d+")


def _names_a_descriptor(path: Path) -> bool:
    """Whether ``path`` is (a link to) an open file descriptor such as ``/dev/stdout``:
    what the shell redirected it to (``>> log``) is written through, never replaced."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if _DESCRIPTOR.fullmatch(current):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return False


def _streamed(path: Path, found: os.stat_result | None) -> bool:
    """Written through rather than replaced: a device, a FIFO, a socket, a descriptor."""
    if found is None:
        return False
    return not stat.S_ISREG(found.st_mode) or _names_a_descriptor(path)


def check_writable(path: str | Path, option: str = "--output") -> Path:
    """Refuse, before any work, a path that cannot be written. A device, FIFO or
    ``/dev/stdout`` is written through; a regular file (or a new one) is replaced by a
    temporary file renamed into place, so its folder must be writable."""
    path = Path(path)
    found = _existing(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise MbprofError(f"{option}: {str(path)!r} is a directory; give a file path")
    if _streamed(path, found):
        if not os.access(path, os.W_OK):
            raise MbprofError(f"{option}: cannot write {str(path)!r}: permission denied")
        return path
    target = Path(os.path.realpath(path))  # a link's target is written, never the link
    parent = target.parent
    if not parent.is_dir():
        shown = path.parent if str(path.parent) else Path(".")
        raise MbprofError(
            f"{option}: cannot write {str(path)!r}: folder {str(shown)!r} does not exist"
        )
    if not os.access(parent, os.W_OK) or (found is not None and not os.access(path, os.W_OK)):
        raise MbprofError(f"{option}: cannot write {str(path)!r}: permission denied")
    return path


def _umask() -> int:
    try:  # Linux says it without changing it (no window for other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the portable way to read it is to set it
    os.umask(mask)
    return mask


def _cannot_write(path: Path, exc: OSError) -> MbprofError:
    reason = (exc.strerror or str(exc)).lower() if isinstance(exc, OSError) else str(exc)
    return MbprofError(f"cannot write {str(path)!r}: {reason}")


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` whole or not at all, and never replace what is not a regular file.

    A regular file (or a new path) gets a temporary file beside it renamed into place, so
    a reader never sees half a file and a failure leaves the old file untouched; the new
    file keeps the old one's permissions (a new one gets the user's umask). A symbolic
    link's target is replaced, not the link. A character device, FIFO or socket
    (``/dev/null``) and an open descriptor (``/dev/stdout``, whatever the shell sent it
    to) are written through, never replaced. A failure to write (``/dev/full``: no space
    left on device) is one ``MbprofError`` naming the path."""
    path = Path(path)
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    found = _existing(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise MbprofError(f"cannot write {str(path)!r}: it is a directory")
    if _streamed(path, found):
        try:  # appending: a descriptor redirected with >> keeps what it holds
            with open(path, "ab") as handle:
                handle.write(payload)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        return path
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return path


def read_frame(path: str | Path) -> pd.DataFrame:
    """A frame written by mbprof: CSV, or the first table of a JSON document."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MbprofError(f"{str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            tables = payload.get("tables") if isinstance(payload, dict) else None
            if not tables:
                raise MbprofError(f"{str(path)!r} is not an mbprof JSON result (no 'tables')")
            return pd.DataFrame(next(iter(tables.values())))
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        if isinstance(exc, MbprofError):
            raise
        raise MbprofError(f"{str(path)!r} cannot be read as CSV or JSON: {exc}") from None
