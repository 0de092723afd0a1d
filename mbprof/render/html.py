"""A document as one self-contained HTML file (``--html FILE``: styles, script and figures
inline, nothing fetched), or the fragment a notebook shows of a result record."""

from __future__ import annotations

import base64
import html
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

from mbprof.core.records import DISPLAY, BenchResult, Profile
from mbprof.core.units import format_value
from mbprof.render.document import Document, Table, _jsonable, safe_text, text_rows
from mbprof.render.latency_view import bench_frame, layers_document, layers_frame
from mbprof.render.profile_view import layer_frame, profile_document

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;white-space:nowrap}
th{background:#f3f3f3;text-align:left;position:sticky;top:0}
table.rows th{cursor:pointer}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.bar{background-repeat:no-repeat;background-image:linear-gradient(#cfe3f7,#cfe3f7)}
img{max-width:100%;border:1px solid #eee}.notes{color:#555;font-size:13px}
"""
# Click a header to sort by it (numbers by their raw value), again to reverse.
SCRIPT = """
document.querySelectorAll("table.rows th").forEach((th, i) => th.onclick = () => {
  const body = th.closest("table").tBodies[0], up = th.dataset.up !== "1";
  const key = r => { const c = r.cells[i], v = c.dataset.v;
    return v === undefined ? c.textContent : (v === "" ? -Infinity : +v); };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(r => body.appendChild(r));
  th.dataset.up = up ? "1" : "0";
});
"""


def _e(text: object) -> str:
    return html.escape(safe_text(str(text)))


def _td(cell: str, kind: str, value: object, top: float) -> str:
    if kind == "text":
        return f"<td>{_e(cell)}</td>"
    if kind == "percent" and value is not None:
        size = f"background-size:{100 * abs(value) / top:.1f}% 100%"
        return f'<td class="n bar" style="{size}" data-v="{value}">{_e(cell)}</td>'
    return f'<td class=n data-v="{"" if value is None else value}">{_e(cell)}</td>'


def _table(table: Table) -> str:
    headers, kinds, rows, raw = text_rows(table)
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    numbers = [[v if type(v := _jsonable(x)) in (int, float) else None for x in r] for r in raw]
    # A share drawn as a bar behind its figure, the column's largest as a full cell.
    tops = [max((abs(r[i]) for r in numbers if r[i] is not None), default=0) or 1
            for i in range(len(kinds))]  # fmt: skip
    body = [
        "<tr>" + "".join(map(_td, cells, kinds, values, tops)) + "</tr>"
        for cells, values in zip(rows, numbers, strict=True)
    ]
    title = f"<h2>{_e(table.title)}</h2>" if table.title else ""
    return (
        f'{title}<table class="rows"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def figure_svg(draw: Callable[[Path], object]) -> str:
    """The SVG text of a figure that ``draw(path)`` writes (the existing plot functions)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "figure.svg"
        draw(path)
        return path.read_text(encoding="utf-8")


def to_html(doc: Document, whole: bool = True) -> str:
    """The page (``whole``), or the fragment a notebook shows."""
    facts = "".join(
        f"<tr><th>{_e(f.label)}</th><td class=n>{_e(format_value(f.value, f.kind))}</td>"
        f"<td>{_e(f.note)}</td></tr>"
        for f in doc.facts
    )
    parts = [f"<h1>{_e(doc.title)}</h1>"]
    if facts:
        parts.append(f"<table>{facts}</table>")
    for title, figure in doc.figures.items():
        mime = "image/svg+xml" if isinstance(figure, str) else "image/png"
        data = base64.b64encode(figure.encode() if isinstance(figure, str) else figure).decode()
        parts.append(f'<h2>{_e(title)}</h2><img alt="{_e(title)}" src="data:{mime};base64,{data}">')
    parts += [_table(t) for t in doc.tables if t.text_keys]
    if doc.notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in doc.notes)
        parts.append(f'<h2>Conventions and notes</h2><ul class="notes">{items}</ul>')
    if not whole:
        return "<div>" + "".join(parts) + "</div>"
    meta = {**{k: v for k, v in doc.meta.items() if not isinstance(v, (list, dict))},
            "platform": platform.platform(), "python": platform.python_version()}  # fmt: skip
    machine = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta.items())
    parts.append(f"<h2>Written by</h2><table>{machine}</table>")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(doc.title)}'
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


DISPLAY[Profile] = (
    lambda p: to_html(profile_document(p), whole=False),
    lambda p: layer_frame(p.counts.layers, p.counts.madds),
)
DISPLAY[BenchResult] = (
    lambda b: to_html(layers_document(b), whole=False),
    lambda b: bench_frame(b) if b.layers is None else layers_frame(b.layers),
)
