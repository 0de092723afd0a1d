"""Documents for activation memory: `mbprof memory`, and the table `mbprof profile` adds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mbprof.core.records import LivePoint, MeasuredMemory, MemoryReport, ModelSpec
from mbprof.core.units import format_value
from mbprof.render.document import Document, Fact, Table, data_frame, frame_records

if TYPE_CHECKING:
    import pandas as pd


def _chunks_text(report: MemoryReport) -> str:
    return "one channel per chunk" if report.chunks is None else f"T = {report.chunks} chunks"


def dtype_text(report: MemoryReport) -> str:
    return f"{report.dtype}, {report.bytes_per_element} byte(s) per element"


_RESOLUTION_FIELDS = ("channels", "tensor_bytes", "op_bytes", "op")


def resolution_table(report: MemoryReport, hide_ops: bool = False) -> Table:
    """The paper's Table 3 layout: per size, the largest tensor and op, both modes."""
    mat = {row.resolution: row for row in report.resolutions}
    eff = {row.resolution: row for row in report.resolutions_efficient}
    rows: list[dict[str, Any]] = []
    for hw in sorted(set(mat) | set(eff), key=lambda hw: (-hw[0] * hw[1], -hw[0])):
        row = {"size": f"{hw[0]}x{hw[1]}"}
        for suffix, found in (("", mat.get(hw)), ("_efficient", eff.get(hw))):
            row.update({f"{k}{suffix}": getattr(found, k, None) for k in _RESOLUTION_FIELDS})
        rows.append(row)
    ints = [f"{k}{s}" for s in ("", "_efficient") for k in _RESOLUTION_FIELDS[:3]]
    title = f"Largest activation per spatial size ({dtype_text(report)}; materialized, then "
    title += f"memory-efficient with {_chunks_text(report)})"
    hidden = ("op", "op_efficient") if hide_ops else ()
    secondary = ("op_efficient", "op", "channels_efficient", "channels")
    frame = data_frame(rows, ints=ints)
    return Table("memory_per_resolution", frame, title, {}, {}, hidden, secondary)


# The chunked blocks' table: its columns (mbprof.frame.columns), in order, and the block
# fields shown under another name.
_BLOCKS = "block kind expand exit in_ch expanded_ch out_ch chunk_ch chunk_bytes residual two_pass"
_FIELDS = {"block": "module", "in_ch": "in_channels", "expanded_ch": "expanded_channels"}
_FIELDS.update(out_ch="out_channels", chunk_ch="chunk_channels")


_CURVE_FIELDS = ("step", "module", "op", "shape", "live_bytes", "input_bytes", "output_bytes",
                 "held_bytes", "internal_bytes")  # fmt: skip


def curve_frame(report: MemoryReport) -> pd.DataFrame:
    """Live bytes at every op, both modes (``mode`` column), for plots."""
    rows = []
    for mode, points in (("materialized", report.curve), ("efficient", report.curve_efficient)):
        for p in points:
            row = {"mode": mode, **{k: getattr(p, k) for k in _CURVE_FIELDS}}
            row.update(module=p.module or "(model)", shape="x".join(map(str, p.shape or ())))
            rows.append({**row, "dtype": report.dtype, "chunks": report.chunks_label})
    return data_frame(rows)


def _where(p: LivePoint) -> str:
    chunk = f" + chunk {p.internal_bytes:,}" if p.internal_bytes else ""
    parts = f"inputs {p.input_bytes:,} + outputs {p.output_bytes:,} + held {p.held_bytes:,}"
    live = format_value(p.live_bytes, "bytes")
    return f"at {p.module or '(model)'} {p.op}: {parts}{chunk} ({live})"


def memory_facts(report: MemoryReport, measured: MeasuredMemory | None = None) -> list[Fact]:
    """The facts of ``report`` (and of a ``measured`` pass beside it, where one ran)."""
    peak, efficient = report.peak.live_bytes, report.peak_efficient.live_bytes
    ratio = peak / efficient if efficient else float("nan")
    largest = report.max_tensor_bytes_efficient
    facts = [
        ("mem_dtype", "Activation dtype", dtype_text(report), "text"),
        ("mem_chunks", "Chunks (T)", report.chunks_label, "text", _chunks_text(report)),
        ("input_bytes", "Input image (bytes)", report.input_bytes, "int",
         "not counted in any figure below"),
        ("peak_act_bytes", "Peak, materialized (bytes)", peak, "int", _where(report.peak)),
        ("peak_act_bytes_efficient", "Peak, memory-efficient (bytes)", efficient, "int",
         _where(report.peak_efficient)),
        ("peak_ratio", "Materialized / efficient", round(ratio, 2), "auto",
         f"{len(report.blocks)} chunked blocks"),
        ("max_tensor_bytes", "Largest tensor (bytes)", report.max_tensor_bytes, "int",
         f"{format_value(report.max_tensor_bytes, 'bytes')}; memory-efficient: "
         f"{largest:,} ({format_value(largest, 'bytes')})"),
        ("eager_peak_bytes", "Peak, eager PyTorch op by op (bytes)", report.eager_peak_bytes,
         "int", "batch norm writes a new tensor; each tensor freed after its last use"),
    ]  # fmt: skip
    if measured is not None:
        facts += [
            ("measured_peak_bytes", f"Measured peak, real {measured.device} pass (bytes)",
             measured.peak_bytes, "int",
             "storages freed when PyTorch frees them (Python references keep some longer)"),
            ("measured_last_use_peak_bytes", "Measured, freed at last use (bytes)",
             measured.last_use_peak_bytes, "int",
             "the real storages under the analysis' rule: equals the eager peak"),
            ("allocator_peak_bytes", "CUDA max_memory_allocated (bytes)",
             measured.allocator_peak_bytes, "int",
             "includes workspaces and 512-byte block rounding"),
        ]  # fmt: skip
    return [Fact(*f) for f in facts if f[2] is not None or f[0] != "allocator_peak_bytes"]


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


def memory_document(spec: ModelSpec, report: MemoryReport, measured: MeasuredMemory | None = None):
    shape = "x".join(str(d) for d in spec.input_shape(report.batch))
    facts = [Fact("model", "Model", spec.label, "text")]
    facts += [Fact("input_shape", "Input", shape, "text"), *memory_facts(report, measured)]
    tables = [resolution_table(report)]
    if report.blocks:
        rows = []
        for b in report.blocks:
            row = {key: getattr(b, _FIELDS.get(key, key)) for key in _BLOCKS.split()}
            row.update(expand=b.expand or "(model)", exit=b.exit or "(model)")
            row.update({k: "yes" if getattr(b, k) else "no" for k in ("residual", "two_pass")})
            rows.append(row)
        title = "Chunked blocks of the memory-efficient mode (found by structure)"
        secondary = ("two_pass", "residual", "exit", "expand", "kind", "chunk_ch")
        frame = data_frame(rows, _BLOCKS.split())
        tables.append(Table("chunked_blocks", frame, title, secondary=secondary))
    meta = {"curve": frame_records(curve_frame(report))}
    return Document(f"{spec.label}: activation memory", facts, tables, list(NOTES), meta, "memory")
