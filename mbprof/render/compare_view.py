"""Configurations side by side: `mbprof compare` (a compact table, every column for CSV/JSON,
notes for what every row shares) and `mbprof diff` (totals, per-layer and memory deltas)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from mbprof import __version__
from mbprof.core.units import format_multiplier, format_value
from mbprof.frame.columns import COLUMNS
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
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


def _varies(frame: pd.DataFrame, key: str) -> bool:
    return key in frame and frame[key].nunique(dropna=False) > 1


def _has_values(frame: pd.DataFrame, key: str) -> bool:
    return key in frame and frame[key].notna().any()


def _compare_text_columns(frame: pd.DataFrame) -> list[str]:
    optional = {
        "depth": _varies(frame, "depth"),
        "num_classes": _varies(frame, "num_classes"),
        "latency_ms_per_image": "batch" in frame and (frame["batch"].fillna(1) > 1).any(),
        "error": _has_values(frame, "error"),
        "args": _has_values(frame, "args"),
        "reparam": _has_values(frame, "reparam"),
        "portable_ops": "portable_ops" in frame and (frame["portable_ops"].fillna(0) > 0).any(),
        # The mark of an unstable latency; when every one is stable a note says so.
        "latency_verdict": "latency_verdict" in frame
        and (frame["latency_verdict"] == "unstable").any(),
    }
    return [k for k in COMPARE_TEXT_COLUMNS if k in frame and optional.get(k, True)]


def _accuracy_notes(frame: pd.DataFrame) -> list[str]:
    """Which published source each top-1 figure comes from, one line per source."""
    if "top1" not in frame or "accuracy_source" not in frame:
        return []
    notes = [f"{COLUMNS['top1'].header}: {COLUMNS['top1'].description}."]
    rows = frame[frame["top1"].notna()]
    for source, group in rows.groupby("accuracy_source", sort=False):
        labels = ", ".join(
            f"{r.model} {format_multiplier(r.width)}@{r.resolution}" for r in group.itertuples()
        )
        notes.append(f"Top-1 of {labels}: {source}.")
    return notes


def _memory_notes(frame: pd.DataFrame) -> list[str]:
    keys = [k for k in ("peak_act_bytes", "peak_act_bytes_efficient") if k in frame]
    notes = [f"{COLUMNS[k].header}: {COLUMNS[k].description}." for k in keys]
    if keys:
        dtype = frame["mem_dtype"].dropna().unique() if "mem_dtype" in frame else []
        chunks = frame["mem_chunks"].dropna().astype(str).unique() if "mem_chunks" in frame else []
        notes.append(
            "Activation memory in "
            + ", ".join(map(str, dtype))
            + (f", T = {', '.join(chunks)}" if len(chunks) else "")
            + "; KB = 1000 bytes; CSV/JSON keep bytes and the largest single tensor."
        )
    return notes


def compare_document(frame: pd.DataFrame, title: str = "Configurations") -> Document:
    """The comparison table: a compact view for people, every column for CSV/JSON."""
    from mbprof.render.latency_view import latency_notes

    shown = _compare_text_columns(frame)
    notes = [f"{COLUMNS[key].header}: {COLUMNS[key].description}." for key in ("madds", "params")]
    for key, label in (("depth", "Depth multiplier"), ("num_classes", "Classes")):
        if key in frame and key not in shown and len(frame):
            value = frame[key].iloc[0]
            notes.append(f"{label} {format_value(value, COLUMNS[key].kind)} for every row.")
    notes += _memory_notes(frame)
    notes += latency_notes(frame, shown)
    notes += _accuracy_notes(frame)
    hidden = tuple(k for k in frame.columns if k not in shown)
    table = Table("configurations", frame, hidden_in_text=hidden, secondary=_SECONDARY)
    meta = {"mbprof_version": __version__}
    return Document(title, tables=[table], notes=notes, meta=meta, kind="compare")


NAMES = {
    "params": "Params",
    "madds": "MAdds",
    "other_flops": "Other FLOPs",
    "out_elements": "Out elems",
    "out_bytes": "Out bytes",
    "layer_time_ms": "Time (ms)",
    "peak_act_bytes": "Peak activations (bytes)",
    "peak_act_bytes_efficient": "Peak, memory-efficient (bytes)",
    "max_tensor_bytes": "Largest tensor (bytes)",
    "latency_ms": "Latency (ms, median)",
    "profiled_ms": "Profiled pass (ms, sum of layers)",
    "tensor_bytes": "Tensor B",
    "op_bytes": "Op B",
    "tensor_bytes_efficient": "Tensor B (eff)",
    "op_bytes_efficient": "Op B (eff)",
}
STRUCTURE_NOTE = (
    " (by structure: the rows left, aligned by the sequence of their types; a row on one "
    "side only counts whole on that side)."
)
NOISE_NOTE = (
    "A time difference is significant only beyond the noise bound: half of each side's "
    "p10-p90 spread, added (per layer: its time times its side's relative spread, as the "
    "profiler gives none per layer); 'within noise' otherwise."
)


def _deltas(frame, keys: dict[str, str]) -> Table:
    """Text shows each figure's delta; CSV/JSON keep before and after beside it."""
    figures = [k.removesuffix("_delta") for k in frame.columns if k.endswith("_delta")]
    return Table(
        name="",
        frame=frame,
        headers={**keys, **{f"{k}_delta": f"Δ {NAMES.get(k, k)}" for k in figures}},
        kinds={**{k: "text" for k in keys}, **{f"{k}_delta": "delta" for k in figures}},
        hidden_in_text=tuple(k for k in frame.columns if k.endswith(("_before", "_after"))),
    )


def diff_document(result: Any) -> Document:
    """``result``: an ``mbprof.api.diff.DiffResult`` (read by attribute)."""
    totals = Table(
        name="totals",
        frame=result.totals.assign(figure=result.totals["figure"].map(lambda k: NAMES.get(k, k))),
        title="Totals (after - before)",
        headers={"figure": "Figure", "before": "Before", "after": "After", "delta": "Δ",
                 "delta_pct": "Δ %", "noise_ms": "Noise (ms)", "verdict": "Verdict"},
        kinds={"figure": "text", "delta": "delta", "delta_pct": "percent",
               "noise_ms": "ms", "verdict": "text"},
        hidden_in_text=() if result.totals["verdict"].notna().any() else ("noise_ms", "verdict"),
    )  # fmt: skip
    tables = [totals]
    notes = list(result.warnings)
    layers = result.layers
    if len(layers):
        keys = {"match": "Matched by", "path": "Module", "after_path": "Module after",
                "type": "Type", "verdict": "Time"}  # fmt: skip
        table = _deltas(layers, keys)
        table.name, table.title = "layers", "Per layer (rows sum to the totals' difference)"
        hidden = list(table.hidden_in_text)
        hidden += [k for k in ("after_path",) if layers[k].isna().all()]
        hidden += [k for k in ("match",) if (layers[k] == "path").all()]
        table.hidden_in_text = tuple(hidden)
        tables.insert(0, table)  # the main table, as CSV writes it
        counts = Counter(layers["match"])
        notes.append(
            "Rows matched: "
            + ", ".join(f"{n} {'' if 'only' in how else 'by '}{how}" for how, n in counts.items())
            + ("." if set(counts) == {"path"} else STRUCTURE_NOTE)
        )
    if len(result.memory):
        table = _deltas(result.memory, {"size": "Size"})
        table.name = "memory_per_resolution"
        table.title = "Largest activation per spatial size (after - before)"
        tables.append(table)
    if any(k in result.totals["figure"].values for k in ("latency_ms", "profiled_ms")):
        notes.append(NOISE_NOTE)
    return Document(
        kind="diff",
        title=f"{result.after.label} against {result.before.label}",
        facts=[
            Fact("before", "Before", result.before.label, "text"),
            Fact("after", "After", result.after.label, "text"),
        ],
        tables=tables,
        notes=notes,
        meta={
            "mbprof_version": __version__,
            "settings": {"before": result.before.settings, "after": result.after.settings},
        },
    )
