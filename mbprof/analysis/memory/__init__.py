"""Activation memory of one forward pass, from the traced graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import nn

from mbprof.analysis.collector import collector_paused
from mbprof.analysis.memory.graph import Graph
from mbprof.analysis.memory.ops import BATCH_NORM
from mbprof.analysis.memory.schedules import (
    find_blocks,
    materialized_buffers,
    peak_point,
    per_resolution,
    schedule,
    simulate,
)
from mbprof.analysis.memory.trace import trace
from mbprof.core.errors import MbprofError
from mbprof.core.records import MemoryReport
from mbprof.core.settings import MemorySettings, memory_settings


class Analysis(NamedTuple):  # the report, and the trace for the analyses after it
    graph: Graph
    report: MemoryReport


@collector_paused()
def analyze(
    model: nn.Module,
    input_shape: Sequence[int],
    settings: MemorySettings | None = None,
    graph: Graph | None = None,
) -> Analysis:
    """The whole analysis with checked ``settings``; ``graph``: the trace when the caller has it."""
    settings = settings or MemorySettings()
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise MbprofError(
            f"input shape {shape!r} is not a tuple of integers such as (1, 3, 224, 224)"
        )
    if any(d < 1 for d in shape):
        raise MbprofError(f"input shape {shape!r} has a dimension < 1; every size must be >= 1")
    element = settings.bytes_per_element
    graph = graph or trace(model, shape)
    size = [b.nbytes // b.itemsize * element if b.floating else b.nbytes for b in graph.buffers]
    out_buffers = {graph.values[v].buffer for v in graph.outputs}
    eager = schedule(graph, range(len(graph.buffers)))[0]
    eager_size = list(size)  # batch norm's statistics: the eager schedule counts them zero
    for node in graph.nodes:
        for b in (graph.values[v].buffer for v in node.outputs[1:]):
            if node.name in BATCH_NORM and graph.buffers[b].created_at == node.index:
                eager_size[b] = 0
    eager_peak = peak_point(simulate(eager, eager_size, out_buffers)).live_bytes
    rep, dropped = materialized_buffers(graph)
    keep = {rep[b] for b in out_buffers}
    mat = simulate(schedule(graph, rep, dropped)[0], size, keep)
    eff, blocks = schedule(graph, rep, dropped, find_blocks(graph), size, element, settings.chunks)
    eff = simulate(eff, size, keep)
    resolutions, resolutions_eff = per_resolution(mat, size), per_resolution(eff, size)
    report = MemoryReport(
        dtype=settings.dtype,
        bytes_per_element=element,
        chunks=settings.chunks,
        batch=shape[0],
        input_bytes=graph.values[graph.input_value].numel * element,
        max_tensor_bytes=max((r.tensor_bytes for r in resolutions), default=0),
        max_tensor_bytes_efficient=max((r.tensor_bytes for r in resolutions_eff), default=0),
        peak=peak_point(mat),
        peak_efficient=peak_point(eff),
        eager_peak_bytes=eager_peak,
        resolutions=resolutions,
        resolutions_efficient=resolutions_eff,
        blocks=tuple(blocks),
        curve=tuple(p for _, p in mat),
        curve_efficient=tuple(p for _, p in eff),
    )
    return Analysis(graph=graph, report=report)


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


__all__ = ["Analysis", "analyze", "analyze_memory"]
