"""The document of `mbprof profile`: totals, the per-layer table and (with memory) the
per-resolution table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.core.records import FlopsCount, LayerRow, Profile
from mbprof.core.units import format_value
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    import pandas as pd

MADDS_NOTE = "conv + fully connected multiply-accumulates, batch 1"
PARAMS_NOTE = "weights, biases, batch-norm affine"
PARAMS_USED_NOTE = "read by the inference forward pass"
UNUSED_MARK = "not read"  # a layer whose parameters inference never reads


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in sorted(ops.items()))


LAYER_COLUMNS = [
    "path",
    "type",
    "kernel",
    "stride",
    "groups",
    "channels",
    "in_channels",
    "out_channels",
    "output_hw",
    "madds",
    "params",
    "params_used",
    "unused",
    "other_flops",
    "madds_share",
]


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
    frame = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    for key in ("groups", "in_channels", "out_channels"):  # integers, also where a row has none
        frame[key] = frame[key].astype("Int64")
    return frame


FLOPS_NAMES = {
    "multiply_adds": "Multiply-adds",
    "bias": "Bias",
    "batch_norm": "Batch norm",
    "pooling": "Pooling",
    "activations": "Activations",
    "additions": "Additions",
    "multiplications": "Multiplications",
}
FLOPS_NOTE = (
    "FLOPs: 2 per multiply-add plus 1 per element-wise operation (rules in the FLOPs table). "
    "DeepSpeed's and calflops' profilers count multiply-adds, batch norm and pooling the same "
    "way, but only the activations and element-wise ops called through the functions they "
    "patch (F.relu, torch.add; not nn.ReLU6, x + y or a linear layer's bias): for "
    "mobilenet_v2 1.0@224 they give 614.97M, 2 x MAdds + batch norm + pooling. torch's "
    "FlopCounterMode counts the multiply-adds only."
)


def flops_table(flops: FlopsCount) -> Table:
    """FLOPs in the 2-per-multiply-add convention, each kind with the rule that counted it."""
    import pandas as pd

    rows = [
        {
            "kind": kind,
            "name": FLOPS_NAMES.get(kind, kind),
            "flops": n,
            "rule": flops.rules.get(kind, ""),
        }
        for kind, n in flops.by_kind.items()
    ]
    return Table(
        name="flops",
        frame=pd.DataFrame(rows),
        title="FLOPs, 2 per multiply-add (the other common convention), by kind",
        headers={"name": "Kind", "flops": "FLOPs", "rule": "Rule"},
        kinds={"kind": "text", "name": "text", "flops": "int", "rule": "text"},
        hidden_in_text=("kind",),
    )


def profile_document(result: Profile, by: str = "layer", max_depth: int | None = None) -> Document:
    """``by`` "layer" (the flat table), "module" (grouped to ``max_depth``, which alone
    also means "module") or "type" (``mbprof.render.layer_groups``)."""
    from mbprof.render.layer_groups import check_grouping, grouped_table

    by, max_depth = check_grouping(by, max_depth)
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
                    f"{op} {format_value(n, 'count')}"
                    for op, n in sorted(counts.other_flops_by_op.items())
                )
                or "none"
            ),
        ),
    ]
    if result.flops is not None:
        facts.append(
            Fact(
                "flops",
                "FLOPs",
                result.flops.total,
                "int",
                "2 per multiply-add + element-wise ops (DeepSpeed/calflops style; see below)",
            )
        )
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
            "other_flops": "Other FLOPs",
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
            "other_flops": "int",
            "madds_share": "percent",
            "params_used": "int",
            "unused": "text",
        },
        hidden_in_text=("in_channels", "out_channels", "params_used")
        + (() if marked else ("unused",)),
        secondary=("groups", "stride", "kernel", "output_hw", "channels", "other_flops", "type"),
    )
    if by != "layer":
        table = grouped_table(counts.layers, by, max_depth)
    notes = [
        "MAdds: multiply-accumulates of convolutions and fully connected layers, counted by "
        + ("fvcore" if counts.engine == "fvcore" else "fvcore's rules on PyTorch's dispatcher")
        + " for one image (the papers' convention).",
        "Not counted (no cost estimate): " + (_ops_text(counts.uncounted_ops) or "none") + ".",
        *(note if note.endswith(".") else f"{note}." for note in result.notes),
        *(f"Not measured: {line}" for line in result.missing),
    ]
    tables = [table]
    if result.flops is not None:
        tables.append(flops_table(result.flops))
        notes.append(FLOPS_NOTE)
        if result.flops.uncounted_ops:
            notes.append(
                "Not in FLOPs (no rule): " + _ops_text(dict(result.flops.uncounted_ops)) + "."
            )
    if result.memory is not None:
        from mbprof.render.memory_view import NOTES, profile_memory_parts

        memory_facts, memory_table = profile_memory_parts(result.memory)
        facts += memory_facts
        tables.append(memory_table)
        notes += NOTES
    return Document(
        kind="profile",
        title=f"{spec.label}: MAdds and parameters",
        facts=facts,
        tables=tables,
        notes=notes,
        meta={"mbprof_version": __version__},
    )
