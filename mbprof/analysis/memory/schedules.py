"""The three schedules of one trace: eager, materialized and memory-efficient steps, each a
list of ``Step`` (buffers in and out of one op) for the liveness simulation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mbprof.analysis.memory.blocks import Region, block_module, chunk_channels, module_counts
from mbprof.analysis.memory.graph import ACT, Graph, Node, is_unary


@dataclass(frozen=True)
class Step:
    """One op as the liveness simulation sees it: buffers in and out, internal bytes."""

    node: int  # graph node (for a chunked block: its last node)
    op: str
    module: str
    inputs: frozenset[int]
    outputs: frozenset[int]
    internal: int = 0
    shape: tuple[int, ...] | None = None
    out_shapes: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (buffer, shape) of each output


class Sizes:
    """Bytes of each buffer in the report's dtype."""

    def __init__(self, graph: Graph, element_bytes: int) -> None:
        self.graph = graph
        self.element_bytes = element_bytes

    def of(self, buffer: int) -> int:
        b = self.graph.buffers[buffer]
        if not b.floating:
            return b.nbytes
        return b.nbytes // b.itemsize * self.element_bytes

    def of_value(self, value: int) -> int:
        v = self.graph.values[value]
        b = self.graph.buffers[v.buffer]
        return v.numel * (self.element_bytes if b.floating else b.itemsize)


def activation_buffers(graph: Graph, buffers: Iterable[int]) -> frozenset[int]:
    return frozenset(b for b in buffers if graph.buffers[b].kind == ACT)


def eager_steps(graph: Graph) -> tuple[list[Step], set[int]]:
    """Every op as dispatched; batch-norm statistics outputs cost nothing (the CPU eval
    kernel returns them empty). Returns the steps and the buffers that count zero bytes."""
    zero: set[int] = set()
    steps = []
    for node in graph.nodes:
        outs = [(graph.values[v].buffer, graph.values[v].shape) for v in node.outputs]
        if node.batch_norm:
            zero.update(b for b, _ in outs[1:] if graph.buffers[b].created_at == node.index)
        steps.append(_step(graph, node, [graph.values[v].buffer for v in node.inputs], outs))
    return steps, zero


def _step(
    graph: Graph,
    node: Node,
    inputs: Iterable[int],
    outputs: Sequence[tuple[int, tuple[int, ...]]],
) -> Step:
    first = graph.values[node.outputs[0]].shape if node.outputs else None
    counted = activation_buffers(graph, (b for b, _ in outputs))
    return Step(
        node=node.index,
        op=node.name,
        module=node.module,
        inputs=activation_buffers(graph, inputs),
        outputs=counted,
        shape=first,
        out_shapes=tuple((b, shape) for b, shape in outputs if b in counted),
    )


def materialized_buffers(graph: Graph) -> tuple[dict[int, int], set[int]]:
    """Buffer merges of the materialized mode (an element-wise op writes over its input
    when that input is not used again) and the side outputs nobody reads.

    Returns (buffer -> representative buffer, dropped buffers)."""
    parent: dict[int, int] = {}

    def find(b: int) -> int:
        while b in parent:
            b = parent[b]
        return b

    last_use: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            last_use[graph.values[v].buffer] = node.index
    end = len(graph.nodes)
    for v in graph.outputs:
        last_use[graph.values[v].buffer] = end

    dropped: set[int] = set()
    for node in graph.nodes:
        for v in node.outputs[1:]:
            b = graph.values[v].buffer
            if graph.buffers[b].created_at == node.index and b not in last_use:
                dropped.add(b)  # never read: max-pool indices, batch-norm statistics
        src = is_unary(graph, node)
        if src is None:
            continue
        into = find(graph.values[src].buffer)
        fresh = graph.values[node.outputs[0]].buffer
        if graph.buffers[fresh].created_at != node.index or fresh in parent:
            continue
        if graph.buffers[fresh].nbytes != graph.buffers[graph.values[src].buffer].nbytes:
            continue
        if last_use.get(into) != node.index:
            continue  # the input is read later (a shortcut): the op needs a new tensor
        parent[fresh] = into
        last_use[into] = last_use.get(fresh, node.index)
    return {b: find(b) for b in range(len(graph.buffers))}, dropped


def materialized_steps(graph: Graph, rep: dict[int, int], dropped: set[int]) -> list[Step]:
    steps = []
    for node in graph.nodes:
        ins = [rep[graph.values[v].buffer] for v in node.inputs]
        outs = [
            (rep[graph.values[v].buffer], graph.values[v].shape)
            for v in node.outputs
            if graph.values[v].buffer not in dropped
        ]
        steps.append(_step(graph, node, ins, outs))
    return steps


def efficient_steps(
    graph: Graph,
    rep: dict[int, int],
    dropped: set[int],
    regions: list[Region],
    sizes: Sizes,
    chunks: int | None,
) -> tuple[list[Step], list[tuple[Region, int]]]:
    """Materialized steps with each region replaced by one op at its last node."""
    base = materialized_steps(graph, rep, dropped)
    owner = {n: r for r in regions for n in r.nodes}
    everywhere = module_counts(graph, range(len(graph.nodes)))
    steps: list[Step] = []
    chunk_sizes: list[tuple[Region, int]] = []
    for node in graph.nodes:
        region = owner.get(node.index)
        if region is None:
            steps.append(base[node.index])
            continue
        if node.index != region.exit_node:
            continue
        per_chunk = chunk_channels(region.channels, chunks)
        chunk = max(
            sizes.of_value(v) // region.channels * per_chunk
            for v in region.spatial
            if graph.values[v].shape[1] == region.channels
        )
        side_buffers = {rep[graph.values[v].buffer] for v in region.side} - dropped
        side = sum(sizes.of(b) for b in activation_buffers(graph, side_buffers))
        chunk_sizes.append((region, chunk))
        exit_values = [(rep[graph.values[v].buffer], graph.values[v].shape) for v in region.exits]
        steps.append(
            Step(
                node=node.index,
                op="chunked block" if region.kind == "project" else "chunked head",
                module=block_module(graph, region, everywhere),
                inputs=activation_buffers(
                    graph, (rep[graph.values[v].buffer] for v in region.inputs)
                ),
                outputs=activation_buffers(
                    graph, (rep[graph.values[v].buffer] for v in region.exits)
                ),
                internal=chunk + side,
                shape=graph.values[region.exits[0]].shape if region.exits else None,
                out_shapes=tuple(exit_values),
            )
        )
    return steps, chunk_sizes
