"""The document of `mbprof profile`: totals, the per-layer table and (with memory) the
per-resolution table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.core.records import LayerRow, Profile
from mbprof.core.units import format_count
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    import pandas as pd

MADDS_NOTE = "conv + fully connected multiply-accumulates, batch 1"
PARAMS_NOTE = "weights, biases, batch-norm affine"
PARAMS_USED_NOTE = "read by the inference forward pass"
UNUSED_MARK = "not read"  # a layer whose parameters inference never reads


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in sorted(ops.items()))


def layer_frame(layers: Sequence[LayerRow], madds_total: int) -> pd.DataFrame:
    import pandas as pd

    def pair(values: tuple[int, int] | None) -> str | None:
        return None if values is None else f"{values[0]}x{values[1]}"

    rows = []
    for row in layers:
        channels = None
        if row.in_channels is not None:
            channels = f"{row.in_channels} -> {row.out_channels}"
        rows.append(
            {
                "path": row.path,
                "type": row.type,
                "kernel": pair(row.kernel),
                "stride": pair(row.stride),
                "groups": row.groups,
                "channels": channels,
                "in_channels": row.in_channels,
                "out_channels": row.out_channels,
                "output_hw": pair(row.out_hw),
                "madds": row.madds,
                "params": row.params,
                "params_used": row.params_used,
                "unused": UNUSED_MARK if row.params and row.params_used == 0 else "",
                "other_flops": row.other_flops,
                "madds_share": 100.0 * row.madds / madds_total if madds_total else 0.0,
            }
        )
    return pd.DataFrame(rows)


def profile_document(result: Profile) -> Document:
    spec, counts = result.spec, result.counts
    facts = [
        Fact("model", "Model", spec.model, "text"),
        Fact("width", "Width multiplier", spec.width, "float"),
        Fact("depth", "Depth multiplier", spec.depth, "float"),
        Fact("resolution", "Input", f"{spec.resolution[0]}x{spec.resolution[1]}x3", "text"),
        Fact("num_classes", "Classes", spec.num_classes, "int"),
        Fact("madds", "MAdds", counts.madds, "int", MADDS_NOTE),
        Fact("params", "Params", counts.params, "int", PARAMS_NOTE),
        Fact("params_used", "Params used", counts.params_used, "int", PARAMS_USED_NOTE),
        Fact(
            "other_flops",
            "Other FLOPs",
            counts.other_flops,
            "int",
            "not in MAdds: "
            + (
                ", ".join(
                    f"{op} {format_count(n)}" for op, n in sorted(counts.other_flops_by_op.items())
                )
                or "none"
            ),
        ),
    ]
    if spec.kwargs:
        facts.insert(5, Fact("args", "Builder args", dict(spec.kwargs), "text"))
    layers = layer_frame(counts.layers, counts.madds)
    marked = "unused" in layers and (layers["unused"] != "").any()
    table = Table(
        name="layers",
        frame=layers,
        title="Per layer (each module's own ops; rows sum to the totals)",
        headers={
            "path": "Module",
            "type": "Type",
            "kernel": "Kernel",
            "stride": "Stride",
            "groups": "Groups",
            "channels": "In -> out",
            "output_hw": "Output HxW",
            "madds": "MAdds",
            "params": "Params",
            "madds_share": "Share",
            "unused": "Inference",
        },
        kinds={
            "path": "text",
            "type": "text",
            "kernel": "text",
            "stride": "text",
            "groups": "int",
            "channels": "text",
            "output_hw": "text",
            "madds": "int",
            "params": "int",
            "madds_share": "percent",
            "params_used": "int",
            "unused": "text",
        },
        hidden_in_text=("in_channels", "out_channels", "other_flops", "params_used")
        + (() if marked else ("unused",)),
    )
    notes = [
        "MAdds: multiply-accumulates of convolutions and fully connected layers, counted by "
        "fvcore for one image (the papers' convention).",
        "Not counted (no cost estimate): " + (_ops_text(counts.uncounted_ops) or "none") + ".",
        *(note if note.endswith(".") else f"{note}." for note in result.notes),
    ]
    tables = [table]
    if result.memory is not None:
        from mbprof.render.memory_view import NOTES, profile_memory_parts

        memory_facts, memory_table = profile_memory_parts(result.memory)
        facts += memory_facts
        tables.append(memory_table)
        notes += NOTES
    return Document(
        title=f"{spec.label}: MAdds and parameters",
        facts=facts,
        tables=tables,
        notes=notes,
        meta={"mbprof_version": __version__},
    )
