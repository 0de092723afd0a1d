"""The three schedules of one trace (eager, materialized, efficient) and the liveness over them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mbprof.analysis.memory.blocks import Region, block_module, chunk_channels, module_counts
from mbprof.analysis.memory.graph import ACT, Graph, Node, is_unary
from mbprof.core.records import LivePoint, ResolutionMemory


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
    """Every op as dispatched, and the buffers that count zero (batch-norm statistics)."""
    zero = {
        b
        for node in graph.nodes
        if node.batch_norm
        for b in (graph.values[v].buffer for v in node.outputs[1:])
        if graph.buffers[b].created_at == node.index
    }
    return materialized_steps(graph, range(len(graph.buffers)), set()), zero


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
    """(buffer -> representative, dropped buffers) of the materialized mode."""
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


def materialized_steps(graph: Graph, rep: dict[int, int] | range, dropped: set[int]) -> list[Step]:
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


def alive(spans: Iterable[tuple[int, int, int]], steps: int) -> list[int]:
    """Bytes alive at each of ``steps`` steps, of (first step, last step, bytes) spans."""
    delta = [0] * (steps + 1)
    for first, last, nbytes in spans:
        delta[first] += nbytes
        delta[last + 1] -= nbytes
    return list(itertools.accumulate(delta))[:steps]


def simulate(
    steps: Sequence[Step], size: dict[int, int], keep: Iterable[int] = ()
) -> list[tuple[Step, LivePoint]]:
    """Live bytes at each step that touches an activation."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for b in step.outputs | step.inputs:
            first.setdefault(b, i)
            last[b] = i
    for b in keep:
        if b in first:
            last[b] = len(steps) - 1
    live_at = alive([(i, last[b], size[b]) for b, i in first.items()], len(steps))
    points = []
    for step, held in zip(steps, live_at, strict=True):
        ins = sum(size[b] for b in step.inputs)
        outs = sum(size[b] for b in step.outputs - step.inputs)
        if not (ins or outs or step.internal):
            continue  # touches no activation (weight views, empty allocations): not a point
        live = held + step.internal
        points.append(
            (
                step,
                LivePoint(
                    step=len(points),
                    op=step.op,
                    module=step.module,
                    shape=step.shape,
                    live_bytes=live,
                    input_bytes=ins,
                    output_bytes=outs,
                    held_bytes=live - ins - outs - step.internal,
                    internal_bytes=step.internal,
                ),
            )
        )
    return points


def peak_point(points: Sequence[LivePoint]) -> LivePoint:
    if not points:
        return LivePoint(0, "", "", None, 0, 0, 0, 0, 0)
    return max(points, key=lambda p: (p.live_bytes, -p.step))


def resolution_of(shape: tuple[int, ...]) -> tuple[tuple[int, int], int] | None:
    """((h, w), channels) of an activation shape, or None for ranks that have no map."""
    if len(shape) >= 4:
        return (shape[-2], shape[-1]), math.prod(shape[1:-2])
    if len(shape) in (1, 2):
        return (1, 1), shape[-1] if len(shape) == 2 else shape[0]
    return None


def per_resolution(
    points: Sequence[tuple[Step, LivePoint]], size: dict[int, int]
) -> tuple[ResolutionMemory, ...]:
    """Per spatial size: the largest buffer, and the op with the most bytes there."""
    shape_of: dict[int, tuple[int, ...]] = {}
    for step, _ in points:
        for b, shape in step.out_shapes:
            shape_of.setdefault(b, shape)  # the shape it was created with, not a later view
    largest: dict[tuple[int, int], tuple[int, int, tuple[int, ...]]] = {}
    for b, shape in shape_of.items():
        where = resolution_of(shape)
        if where is None:
            continue
        hw, channels = where
        if hw not in largest or size[b] > largest[hw][0]:
            largest[hw] = (size[b], channels, shape)
    biggest_op: dict[tuple[int, int], tuple[int, str]] = {}
    for step, point in points:
        if not step.outputs - step.inputs or step.shape is None:
            continue  # views and in-place ops create nothing
        where = resolution_of(step.shape)
        if where is None:
            continue
        op_bytes = point.input_bytes + point.output_bytes + point.internal_bytes
        if where[0] not in biggest_op or op_bytes > biggest_op[where[0]][0]:
            biggest_op[where[0]] = (op_bytes, f"{step.module or '(model)'} {step.op}")
    rows = []
    for hw in sorted(largest, key=lambda r: (-r[0] * r[1], -r[0])):
        nbytes, channels, shape = largest[hw]
        op_bytes, op = biggest_op.get(hw, (0, ""))
        rows.append(ResolutionMemory(hw, channels, nbytes, shape, op_bytes, op))
    return tuple(rows)
