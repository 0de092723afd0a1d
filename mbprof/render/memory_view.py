"""Documents for activation memory: `mbprof memory`, and the table `mbprof profile` adds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbprof import __version__
from mbprof.core.records import (
    LivePoint,
    MeasuredMemory,
    MemoryReport,
    ModelSpec,
    ResolutionMemory,
)
from mbprof.core.units import format_value
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    import pandas as pd

UNIT_NOTE = "KB = 1000 bytes"


def _size(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


def _chunks_text(report: MemoryReport) -> str:
    return "one channel per chunk" if report.chunks is None else f"T = {report.chunks} chunks"


def dtype_text(report: MemoryReport) -> str:
    return f"{report.dtype}, {report.bytes_per_element} byte(s) per element"


def resolution_frame(report: MemoryReport) -> pd.DataFrame:
    """The paper's Table 3 layout: per size, the largest tensor and op, both modes."""
    import pandas as pd

    def by_size(rows: Sequence[ResolutionMemory]) -> dict[tuple[int, int], ResolutionMemory]:
        return {row.resolution: row for row in rows}

    mat, eff = by_size(report.resolutions), by_size(report.resolutions_efficient)
    sizes = sorted(set(mat) | set(eff), key=lambda hw: (-hw[0] * hw[1], -hw[0]))
    rows: list[dict[str, Any]] = []
    for hw in sizes:
        m, e = mat.get(hw), eff.get(hw)
        rows.append(
            {
                "size": _size(hw),
                "channels": m.channels if m else None,
                "tensor_bytes": m.tensor_bytes if m else None,
                "op_bytes": m.op_bytes if m else None,
                "op": m.op if m else None,
                "channels_efficient": e.channels if e else None,
                "tensor_bytes_efficient": e.tensor_bytes if e else None,
                "op_bytes_efficient": e.op_bytes if e else None,
                "op_efficient": e.op if e else None,
            }
        )
    frame = pd.DataFrame(rows)
    for key in ("channels", "tensor_bytes", "op_bytes"):
        for column in (key, f"{key}_efficient"):
            frame[column] = frame[column].astype("Int64")
    return frame


def resolution_table(report: MemoryReport, hide_ops: bool = False) -> Table:
    return Table(
        name="memory_per_resolution",
        frame=resolution_frame(report),
        title=(
            f"Largest activation per spatial size ({dtype_text(report)}; materialized, then "
            f"memory-efficient with {_chunks_text(report)})"
        ),
        hidden_in_text=("op", "op_efficient") if hide_ops else (),
        secondary=("op_efficient", "op", "channels_efficient", "channels"),
    )


def blocks_frame(report: MemoryReport) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "block": b.module,
                "kind": b.kind,
                "expand": b.expand or "(model)",
                "exit": b.exit or "(model)",
                "in_ch": b.in_channels,
                "expanded_ch": b.expanded_channels,
                "out_ch": b.out_channels,
                "chunk_ch": b.chunk_channels,
                "chunk_bytes": b.chunk_bytes,
                "residual": "yes" if b.residual else "no",
                "two_pass": "yes" if b.two_pass else "no",
            }
            for b in report.blocks
        ],
        columns=[
            "block",
            "kind",
            "expand",
            "exit",
            "in_ch",
            "expanded_ch",
            "out_ch",
            "chunk_ch",
            "chunk_bytes",
            "residual",
            "two_pass",
        ],
    )


_BLOCK_HEADERS = {
    "block": "Block",
    "kind": "Kind",
    "expand": "Expansion",
    "exit": "Exit",
    "in_ch": "In",
    "expanded_ch": "Expanded",
    "out_ch": "Out",
    "chunk_ch": "Chunk ch",
    "chunk_bytes": "Chunk B",
    "residual": "Residual",
    "two_pass": "Two passes",
}
_BLOCK_KINDS = {k: "text" for k in ("block", "kind", "expand", "exit", "residual", "two_pass")}
_BLOCK_KINDS.update({k: "int" for k in ("in_ch", "expanded_ch", "out_ch", "chunk_ch")})
_BLOCK_KINDS["chunk_bytes"] = "int"


def curve_frame(report: MemoryReport) -> pd.DataFrame:
    """Live bytes at every op, both modes (``mode`` column), for plots."""
    import pandas as pd

    def rows(mode: str, points: Sequence[LivePoint]) -> list[dict[str, Any]]:
        return [
            {
                "mode": mode,
                "step": p.step,
                "module": p.module or "(model)",
                "op": p.op,
                "shape": "x".join(str(d) for d in p.shape) if p.shape else "",
                "live_bytes": p.live_bytes,
                "input_bytes": p.input_bytes,
                "output_bytes": p.output_bytes,
                "held_bytes": p.held_bytes,
                "internal_bytes": p.internal_bytes,
                "dtype": report.dtype,
                "chunks": report.chunks_label,
            }
            for p in points
        ]

    return pd.DataFrame(
        rows("materialized", report.curve) + rows("efficient", report.curve_efficient)
    )


def _where(point: LivePoint) -> str:
    parts = [
        f"at {point.module or '(model)'} {point.op}: inputs {point.input_bytes:,}",
        f"outputs {point.output_bytes:,}",
        f"held {point.held_bytes:,}",
    ]
    if point.internal_bytes:
        parts.append(f"chunk {point.internal_bytes:,}")
    return " + ".join(parts) + f" ({format_value(point.live_bytes, 'bytes')})"


def memory_facts(report: MemoryReport) -> list[Fact]:
    ratio = (
        report.peak.live_bytes / report.peak_efficient.live_bytes
        if report.peak_efficient.live_bytes
        else float("nan")
    )
    return [
        Fact("mem_dtype", "Activation dtype", dtype_text(report), "text"),
        Fact("mem_chunks", "Chunks (T)", report.chunks_label, "text", _chunks_text(report)),
        Fact(
            "input_bytes",
            "Input image (bytes)",
            report.input_bytes,
            "int",
            "not counted in any figure below",
        ),
        Fact(
            "peak_act_bytes",
            "Peak, materialized (bytes)",
            report.peak.live_bytes,
            "int",
            _where(report.peak),
        ),
        Fact(
            "peak_act_bytes_efficient",
            "Peak, memory-efficient (bytes)",
            report.peak_efficient.live_bytes,
            "int",
            _where(report.peak_efficient),
        ),
        Fact(
            "peak_ratio",
            "Materialized / efficient",
            round(ratio, 2),
            "auto",
            f"{len(report.blocks)} chunked blocks",
        ),
        Fact(
            "max_tensor_bytes",
            "Largest tensor (bytes)",
            report.max_tensor_bytes,
            "int",
            f"{format_value(report.max_tensor_bytes, 'bytes')}; memory-efficient: "
            f"{report.max_tensor_bytes_efficient:,} ({format_value(report.max_tensor_bytes_efficient, 'bytes')})",
        ),
        Fact(
            "eager_peak_bytes",
            "Peak, eager PyTorch op by op (bytes)",
            report.eager_peak_bytes,
            "int",
            "batch norm writes a new tensor; each tensor freed after its last use",
        ),
    ]


def measured_facts(measured: MeasuredMemory) -> list[Fact]:
    facts = [
        Fact(
            "measured_peak_bytes",
            f"Measured peak, real {measured.device} pass (bytes)",
            measured.peak_bytes,
            "int",
            "storages freed when PyTorch frees them (Python references keep some longer)",
        ),
        Fact(
            "measured_last_use_peak_bytes",
            "Measured, freed at last use (bytes)",
            measured.last_use_peak_bytes,
            "int",
            "the real storages under the analysis' rule: equals the eager peak",
        ),
    ]
    if measured.allocator_peak_bytes is not None:
        facts.append(
            Fact(
                "allocator_peak_bytes",
                "CUDA max_memory_allocated (bytes)",
                measured.allocator_peak_bytes,
                "int",
                "includes workspaces and 512-byte block rounding",
            )
        )
    return facts


NOTES = [
    "Bytes of activations only (no weights), batch as given, KB = 1000 bytes; every "
    "floating-point element costs the dtype's size. The input image is not counted.",
    "Materialized: every tensor whole; batch norm and activations write over their input "
    "when nothing reads it later (a deployed conv + BN + activation layer); residual adds "
    "and concatenations write a new tensor; shortcut and concatenation inputs stay alive "
    "until their last use.",
    "Memory-efficient (MobileNetV2 paper, 5.1): each chunked block (widening conv -> "
    "per-channel ops with a depthwise conv -> 1x1 projection to fewer channels, or -> global "
    "pooling) runs as one op needing |input| + |output| + one chunk of its expanded tensor; "
    "a stem followed by a block without expansion fuses with it.",
]


def memory_document(
    spec: ModelSpec,
    report: MemoryReport,
    measured: MeasuredMemory | None = None,
) -> Document:
    facts = [
        Fact("model", "Model", spec.label, "text"),
        Fact(
            "input_shape",
            "Input",
            "x".join(str(d) for d in spec.input_shape(report.batch)),
            "text",
        ),
        *memory_facts(report),
    ]
    if measured is not None:
        facts += measured_facts(measured)
    tables = [resolution_table(report)]
    if report.blocks:
        tables.append(
            Table(
                name="chunked_blocks",
                frame=blocks_frame(report),
                title="Chunked blocks of the memory-efficient mode (found by structure)",
                headers=_BLOCK_HEADERS,
                kinds=_BLOCK_KINDS,
                secondary=("two_pass", "residual", "exit", "expand", "kind", "chunk_ch"),
            )
        )
    from mbprof.render.document import frame_records

    return Document(
        kind="memory",
        title=f"{spec.label}: activation memory",
        facts=facts,
        tables=tables,
        notes=list(NOTES),
        meta={"mbprof_version": __version__, "curve": frame_records(curve_frame(report))},
    )


def profile_memory_parts(report: MemoryReport) -> tuple[list[Fact], Table]:
    """What `mbprof profile` adds: the two peaks and the per-resolution table."""
    facts = [f for f in memory_facts(report) if f.key in _PROFILE_FACTS]
    return facts, resolution_table(report, hide_ops=True)


_PROFILE_FACTS = ("mem_dtype", "peak_act_bytes", "peak_act_bytes_efficient", "mem_chunks")
