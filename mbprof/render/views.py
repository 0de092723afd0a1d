"""Documents for the profile, compare and models commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.core.records import LayerRow, Profile
from mbprof.core.units import format_count
from mbprof.frame.columns import COLUMNS
from mbprof.render.document import Document, Fact, Table
from mbprof.render.formats import format_multiplier, format_value

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.models import ModelInfo

MADDS_NOTE = "conv + fully connected multiply-accumulates, batch 1"
PARAMS_NOTE = "weights, biases, batch-norm affine"


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
    table = Table(
        name="layers",
        frame=layer_frame(counts.layers, counts.madds),
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
        },
        hidden_in_text=("in_channels", "out_channels", "other_flops"),
    )
    notes = [
        "MAdds: multiply-accumulates of convolutions and fully connected layers, counted by "
        "fvcore for one image (the papers' convention).",
        "Not counted (no cost estimate): " + (_ops_text(counts.uncounted_ops) or "none") + ".",
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


# What the terminal and Markdown tables of `compare` show, in this order. Every other
# column (environment, spreads, sources, ...) stays in CSV/JSON and, where it is the
# same for every row, is said once in a note.
COMPARE_TEXT_COLUMNS = (
    "model",
    "width",
    "depth",
    "resolution",
    "num_classes",
    "args",
    "madds",
    "params",
    "peak_act_bytes",
    "peak_act_bytes_efficient",
    "latency_ms",
    "latency_ms_per_image",
    "throughput_ips",
    "achieved_gflops",
    "top1",
    "error",
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
    from mbprof.render.latency_view import compare_latency_parts

    shown = _compare_text_columns(frame)
    notes = [f"{COLUMNS[key].header}: {COLUMNS[key].description}." for key in ("madds", "params")]
    for key, label in (("depth", "Depth multiplier"), ("num_classes", "Classes")):
        if key in frame and key not in shown and len(frame):
            value = frame[key].iloc[0]
            notes.append(f"{label} {format_value(value, COLUMNS[key].kind)} for every row.")
    notes += _memory_notes(frame)
    notes += compare_latency_parts(frame)[1]
    notes += _accuracy_notes(frame)
    hidden = tuple(k for k in frame.columns if k not in shown)
    return Document(
        title=title,
        tables=[Table(name="configurations", frame=frame, hidden_in_text=hidden)],
        notes=notes,
        meta={"mbprof_version": __version__},
    )


def models_document(infos: Sequence[ModelInfo]) -> Document:
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "name": info.name,
                "family": info.family,
                "width": info.width_range,
                "depth": "yes" if info.has_depth else "1.0 only",
                "resolution": f">= {info.min_resolution}",
                "classes": ">= 1",
                "summary": info.summary,
                "reference": info.reference,
            }
            for info in infos
        ]
    )
    text = {key: "text" for key in frame.columns}
    headers = {key: key.capitalize() for key in frame.columns}
    return Document(
        title="Registered models",
        tables=[
            Table(
                name="models",
                frame=frame,
                headers=headers,
                kinds=text,
                hidden_in_text=("reference",),
            )
        ],
        meta={"mbprof_version": __version__},
    )
