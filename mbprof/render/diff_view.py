"""The document of `mbprof diff`: the totals, the per-layer deltas (how each row was
matched) and the per-resolution memory deltas, after minus before."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    from mbprof.api.diff import DiffResult

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


def diff_document(result: DiffResult) -> Document:
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
