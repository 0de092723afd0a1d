"""Activation memory of one forward pass, from the traced graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from mbprof.analysis.collector import collector_paused
from mbprof.analysis.memory.blocks import (
    Region,
    block_module,
    chunk_channels,
    find_blocks,
    module_counts,
)
from mbprof.analysis.memory.graph import Graph
from mbprof.analysis.memory.schedules import (
    Sizes,
    eager_steps,
    efficient_steps,
    materialized_buffers,
    materialized_steps,
    peak_point,
    per_resolution,
    simulate,
)
from mbprof.analysis.memory.trace import trace
from mbprof.core.errors import MbprofError
from mbprof.core.records import ChunkedBlock, MemoryReport
from mbprof.core.settings import MemorySettings, memory_settings


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise MbprofError(
            f"input shape {shape!r} is not a tuple of integers such as (1, 3, 224, 224)"
        )
    if any(d < 1 for d in shape):
        raise MbprofError(f"input shape {shape!r} has a dimension < 1; every size must be >= 1")
    return shape


@dataclass
class Analysis:
    """Everything the analysis computed, for the report and for tests that look inside."""

    graph: Graph
    report: MemoryReport
    regions: list[Region]


@collector_paused()
def analyze(
    model: nn.Module,
    input_shape: Sequence[int],
    settings: MemorySettings | None = None,
    graph: Graph | None = None,
) -> Analysis:
    """The whole analysis with checked ``settings``; ``graph``: the trace when the caller has it."""
    settings = settings or MemorySettings()
    dtype, chunks = settings.dtype, settings.chunks
    shape = check_input_shape(input_shape)
    element = settings.bytes_per_element

    if graph is None:
        graph = trace(model, shape)
    sizes = Sizes(graph, element)
    size = {b.index: sizes.of(b.index) for b in graph.buffers}
    out_buffers = {graph.values[v].buffer for v in graph.outputs}

    eager, zero = eager_steps(graph)
    eager_size = {b: (0 if b in zero else n) for b, n in size.items()}
    eager_points = [p for _, p in simulate(eager, eager_size, out_buffers)]

    rep, dropped = materialized_buffers(graph)
    mat = materialized_steps(graph, rep, dropped)
    mat_keep = {rep[b] for b in out_buffers}
    mat_points = simulate(mat, size, mat_keep)

    regions = find_blocks(graph)
    eff, chunk_sizes = efficient_steps(graph, rep, dropped, regions, sizes, chunks)
    eff_points = simulate(eff, size, mat_keep)

    resolutions = per_resolution(mat_points, size)
    resolutions_eff = per_resolution(eff_points, size)
    everywhere = module_counts(graph, range(len(graph.nodes)))
    blocks = tuple(
        ChunkedBlock(
            kind=r.kind,
            module=block_module(graph, r, everywhere),
            expand=graph.nodes[r.expand].module,
            exit=graph.nodes[r.exit_node].module,
            in_channels=r.in_channels,
            expanded_channels=r.channels,
            out_channels=r.out_channels,
            chunk_channels=chunk_channels(r.channels, chunks),
            chunk_bytes=chunk,
            residual=r.residual,
            two_pass=r.two_pass,
        )
        for r, chunk in chunk_sizes
    )
    image = graph.values[graph.input_value] if graph.input_value is not None else None
    report = MemoryReport(
        dtype=dtype,
        bytes_per_element=element,
        chunks=chunks,
        batch=shape[0],
        input_bytes=image.numel * element if image is not None else 0,
        max_tensor_bytes=max((r.tensor_bytes for r in resolutions), default=0),
        max_tensor_bytes_efficient=max((r.tensor_bytes for r in resolutions_eff), default=0),
        peak=peak_point([p for _, p in mat_points]),
        peak_efficient=peak_point([p for _, p in eff_points]),
        eager_peak_bytes=peak_point(eager_points).live_bytes,
        resolutions=resolutions,
        resolutions_efficient=resolutions_eff,
        blocks=blocks,
        curve=tuple(p for _, p in mat_points),
        curve_efficient=tuple(p for _, p in eff_points),
    )
    return Analysis(graph=graph, report=report, regions=regions)


def analyze_memory(
    model: nn.Module,
    input_shape: Sequence[int],
    dtype: str = "fp16",
    chunks: int | None = None,
) -> MemoryReport:
    """Activation memory of one forward pass of ``model`` on an input of ``input_shape``
    (N, C, H, W), each floating-point element costing ``dtype``'s size (fp16, bf16, fp32,
    int8); ``chunks`` is T of the memory-efficient mode (None: one channel per chunk).

    A pure function: the model is traced on the meta device and left as it was.
    """
    return analyze(model, input_shape, memory_settings(dtype, chunks, ("dtype", "chunks"))).report


__all__ = ["Analysis", "analyze", "analyze_memory", "check_input_shape"]
