"""The document of `mbprof compare`: a compact table for people, every column for CSV/JSON,
and notes that say once what is the same for every row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.core.units import format_multiplier, format_value
from mbprof.frame.columns import COLUMNS
from mbprof.render.document import Document, Table

if TYPE_CHECKING:
    import pandas as pd

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
    "reparam",
    "madds",
    "params",
    "deployed_bytes",
    "peak_act_bytes",
    "peak_act_bytes_efficient",
    "latency_ms",
    "latency_verdict",
    "latency_ms_per_image",
    "throughput_ips",
    "achieved_gflops",
    "int8_speedup",
    "int8_cosine",
    "portable_ops",
    "top1",
    "error",
)
# What a narrow terminal leaves out first, in this order (model, width, resolution, the
# counts and the latency stay).
_SECONDARY = (
    "int8_cosine",
    "portable_ops",
    "deployed_bytes",
    "achieved_gflops",
    "throughput_ips",
    "latency_ms_per_image",
    "peak_act_bytes_efficient",
    "args",
    "num_classes",
    "depth",
    "top1",
    "peak_act_bytes",
    "params",
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
    from mbprof.render.latency_view import compare_latency_parts

    shown = _compare_text_columns(frame)
    notes = [f"{COLUMNS[key].header}: {COLUMNS[key].description}." for key in ("madds", "params")]
    for key, label in (("depth", "Depth multiplier"), ("num_classes", "Classes")):
        if key in frame and key not in shown and len(frame):
            value = frame[key].iloc[0]
            notes.append(f"{label} {format_value(value, COLUMNS[key].kind)} for every row.")
    notes += _memory_notes(frame)
    notes += compare_latency_parts(frame, shown)[1]
    notes += _accuracy_notes(frame)
    hidden = tuple(k for k in frame.columns if k not in shown)
    return Document(
        kind="compare",
        title=title,
        tables=[
            Table(
                name="configurations",
                frame=frame,
                hidden_in_text=hidden,
                secondary=_SECONDARY,
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )
