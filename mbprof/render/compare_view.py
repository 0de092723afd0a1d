"""Configurations side by side: `mbprof compare` (a compact table, every column for CSV/JSON,
notes for what every row shares) and `mbprof diff` (totals, per-layer and memory deltas)."""

from __future__ import annotations

import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.core.units import format_value
from mbprof.frame.columns import COLUMNS, column
from mbprof.render.document import Document, Fact, Table
from mbprof.render.latency_view import latency_notes
from mbprof.render.plots import AXES, frontier_document, plot_frame
from mbprof.render.profile_view import COUNTS

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


# What the terminal and Markdown tables of `compare` show, in this order. Every other
# column (environment, spreads, sources, ...) stays in CSV/JSON and, where it is the
# same for every row, is said once in a note.
COMPARE_TEXT_COLUMNS = tuple(
    "model width depth resolution num_classes args reparam madds params deployed_bytes "
    "peak_act_bytes peak_act_bytes_efficient latency_ms latency_verdict latency_ms_per_image "
    "throughput_ips achieved_gflops int8_speedup int8_cosine portable_ops top1 error".split()
)
# What a narrow terminal leaves out first, in this order (model, width, resolution, the
# counts and the latency stay).
_SECONDARY = tuple(
    "int8_cosine portable_ops deployed_bytes achieved_gflops throughput_ips latency_ms_per_image "
    "peak_act_bytes_efficient args num_classes depth top1 peak_act_bytes params".split()
)


# The columns shown only where they say something, and the test of their values (per image:
# of the batch; the mark of an unstable latency: when every one is stable a note says so).
_OPTIONAL = {
    **dict.fromkeys(("depth", "num_classes"), lambda values: values.nunique(dropna=False) > 1),
    **dict.fromkeys(("error", "args", "reparam"), lambda values: values.notna().any()),
    "latency_ms_per_image": lambda values: (values.fillna(1) > 1).any(),
    "portable_ops": lambda values: (values.fillna(0) > 0).any(),
    "latency_verdict": lambda values: (values == "unstable").any(),
}


def _about(*keys: str) -> list[str]:
    return [f"{COLUMNS[key].header}: {COLUMNS[key].description}." for key in keys]


def compare_document(
    frame: pd.DataFrame, title: str = "Configurations", plot: Path | None = None, figure=False
) -> Document:
    """With ``plot``, top-1 against MAdds drawn there, its frontier a table; ``figure``: inline."""

    def says(key: str) -> bool:
        column = "batch" if key == "latency_ms_per_image" else key
        return key not in _OPTIONAL or (column in frame and bool(_OPTIONAL[key](frame[column])))

    shown = [k for k in COMPARE_TEXT_COLUMNS if k in frame and says(k)]
    notes = _about("madds", "params")
    for key, label in (("depth", "Depth multiplier"), ("num_classes", "Classes")):
        if key in frame and key not in shown and len(frame):
            value = frame[key].iloc[0]
            notes.append(f"{label} {format_value(value, COLUMNS[key].kind)} for every row.")
    if keys := [k for k in ("peak_act_bytes", "peak_act_bytes_efficient") if k in frame]:
        dtype = frame["mem_dtype"].dropna().unique() if "mem_dtype" in frame else []
        chunks = frame["mem_chunks"].dropna().astype(str).unique() if "mem_chunks" in frame else []
        said = ", ".join(map(str, dtype)) + (f", T = {', '.join(chunks)}" if len(chunks) else "")
        said = f"Activation memory in {said}; KB = 1000 bytes; CSV/JSON keep bytes and the "
        notes += _about(*keys) + [said + "largest single tensor."]
    notes += latency_notes(frame, shown)
    if "top1" in frame and "accuracy_source" in frame:  # each top-1's source, one line a source
        notes += _about("top1")
        rows = frame[frame["top1"].notna()]
        for source, group in rows.groupby("accuracy_source", sort=False):
            labels = ", ".join(
                f"{r.model} {format_value(r.width, 'float')}@{r.resolution}"
                for r in group.itertuples()
            )
            notes.append(f"Top-1 of {labels}: {source}.")
    hidden = tuple(k for k in frame.columns if k not in shown)
    table = Table("configurations", frame, hidden_in_text=hidden, secondary=_SECONDARY)
    doc = Document(title, tables=[table], notes=notes, kind="compare")
    draw = functools.partial(plot_frame, frame, AXES["madds"], AXES["top1"], log_x=True)
    if plot is not None:
        front = frontier_document(draw(plot), AXES["madds"], AXES["top1"], "this comparison")
        doc.tables.append(front.tables[0])
        doc.tables[-1].title = front.title
    if figure:
        from mbprof.render.html import figure_svg

        try:  # the Pareto plot, where rows have a published top-1
            doc.figures["Top-1 against MAdds, Pareto frontier"] = figure_svg(draw)
        except MbprofError:
            doc.notes.append("No Pareto plot: no row has a top-1 figure.")
    return doc


# A figure's name in the totals and the Δ headers (else its column's header).
NAMES = {**COUNTS, "out_elements": "Out elems", "out_bytes": "Out bytes"}
NAMES.update(peak_act_bytes="Peak activations (bytes)", max_tensor_bytes="Largest tensor (bytes)")
NAMES.update(peak_act_bytes_efficient="Peak, memory-efficient (bytes)")
NAMES.update(latency_ms="Latency (ms, median)", profiled_ms="Profiled pass (ms, sum of layers)")


def _name(key: str) -> str:
    return NAMES.get(key) or column(key).header


STRUCTURE_NOTE = (
    " (by structure: the rows left, aligned by the sequence of their types; a row on one "
    "side only counts whole on that side)."
)
NOISE_NOTE = (
    "A time difference is significant only beyond the noise bound: half of each side's "
    "p10-p90 spread, added (per layer: its time times its side's relative spread, as the "
    "profiler gives none per layer); 'within noise' otherwise."
)


def _deltas(name: str, title: str, frame, keys: dict[str, str], hidden=()) -> Table:
    """Text shows each figure's delta; CSV/JSON keep before and after beside it."""
    figures = [k.removesuffix("_delta") for k in frame.columns if k.endswith("_delta")]
    headers = {**keys, **{f"{k}_delta": f"Δ {_name(k)}" for k in figures}}
    kinds = {**dict.fromkeys(keys, "text"), **{f"{k}_delta": "delta" for k in figures}}
    sides = [k for k in frame.columns if k.endswith(("_before", "_after"))]
    return Table(name, frame, title, headers, kinds, (*sides, *hidden))


def diff_document(result: Any) -> Document:
    """``result``: an ``mbprof.api.diff.DiffResult`` (read by attribute)."""
    totals = result.totals.assign(figure=result.totals["figure"].map(_name))
    quiet = () if result.totals["verdict"].notna().any() else ("noise_ms", "verdict")
    tables = [Table("totals", totals, "Totals (after - before)", hidden_in_text=quiet)]
    notes = list(result.warnings)
    layers = result.layers
    if len(layers):
        keys = {"match": "Matched by", "path": "Module", "after_path": "Module after",
                "type": "Type", "verdict": "Time"}  # fmt: skip
        hidden = ["after_path"] if layers["after_path"].isna().all() else []
        hidden += ["match"] if (layers["match"] == "path").all() else []
        title = "Per layer (rows sum to the totals' difference)"
        tables.insert(0, _deltas("layers", title, layers, keys, hidden))  # CSV's main table
        counts = Counter(layers["match"])
        notes.append(
            "Rows matched: "
            + ", ".join(f"{n} {'' if 'only' in how else 'by '}{how}" for how, n in counts.items())
            + ("." if set(counts) == {"path"} else STRUCTURE_NOTE)
        )
    if len(result.memory):
        title = "Largest activation per spatial size (after - before)"
        tables.append(_deltas("memory_per_resolution", title, result.memory, {"size": "Size"}))
    if any(k in result.totals["figure"].values for k in ("latency_ms", "profiled_ms")):
        notes.append(NOISE_NOTE)
    sides = {"before": result.before, "after": result.after}
    facts = [Fact(key, key.capitalize(), side.label, "text") for key, side in sides.items()]
    title = f"{result.after.label} against {result.before.label}"
    meta = {"settings": {key: side.settings for key, side in sides.items()}}
    return Document(title, facts, tables, notes, meta, kind="diff")
