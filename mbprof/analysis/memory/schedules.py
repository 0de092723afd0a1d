"""The three schedules of one trace (eager, materialized, efficient) and the liveness over them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mbprof.analysis.memory.blocks import Region, block_module, chunk_channels, module_counts
from mbprof.analysis.memory.graph import ACT, Graph, is_unary
from mbprof.core.records import ChunkedBlock, LivePoint, ResolutionMemory


@dataclass(frozen=True)
class Step:
    """One op as the liveness simulation sees it: buffers in and out, internal bytes."""

    op: str
    module: str
    inputs: frozenset[int]
    outputs: frozenset[int]
    shape: tuple[int, ...] | None
    out_shapes: tuple[tuple[int, tuple[int, ...]], ...]  # (buffer, shape) of each output
    internal: int = 0


def batch_norm_statistics(graph: Graph) -> set[int]:
    """The buffers the eager schedule counts zero."""
    return {
        b
        for node in graph.nodes
        if node.batch_norm
        for b in (graph.values[v].buffer for v in node.outputs[1:])
        if graph.buffers[b].created_at == node.index
    }


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
    for v in graph.outputs:
        last_use[graph.values[v].buffer] = len(graph.nodes)

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


def schedule(
    graph: Graph,
    rep: dict[int, int] | range,
    dropped: set[int] = frozenset(),
    regions: Sequence[Region] = (),
    size: dict[int, int] | None = None,
    element: int = 0,
    chunks: int | None = None,
) -> tuple[list[Step], list[ChunkedBlock]]:
    """One step per op on the buffers ``rep`` merges into; each region one chunked step at
    its last node (``size``, ``element``: bytes of a buffer, of an element in the dtype)."""

    def step(op: str, module: str, ins: Iterable[int], outs: Iterable[int], **more) -> Step:
        def acts(values: Iterable[int]) -> list[tuple[int, tuple[int, ...]]]:
            found = [(rep[graph.values[v].buffer], graph.values[v].shape) for v in values]
            return [(b, shape) for b, shape in found if graph.buffers[b].kind == ACT]

        kept = acts(v for v in outs if graph.values[v].buffer not in dropped)
        inputs, outputs = (frozenset(b for b, _ in pairs) for pairs in (acts(ins), kept))
        return Step(op, module, inputs, outputs, out_shapes=tuple(kept), **more)

    owner = {n: r for r in regions for n in r.nodes}
    everywhere = module_counts(graph, range(len(graph.nodes))) if regions else None

    def value_bytes(v: int) -> int:
        b = graph.buffers[graph.values[v].buffer]
        return graph.values[v].numel * (element if b.floating else b.itemsize)

    steps: list[Step] = []
    blocks: list[ChunkedBlock] = []
    for node in graph.nodes:
        region = owner.get(node.index)
        if region is None:
            first = graph.values[node.outputs[0]].shape if node.outputs else None
            steps.append(step(node.name, node.module, node.inputs, node.outputs, shape=first))
            continue
        if node.index != region.exit_node:
            continue
        per_chunk = chunk_channels(region.channels, chunks)
        chunk = max(
            value_bytes(v) // region.channels * per_chunk
            for v in region.spatial
            if graph.values[v].shape[1] == region.channels
        )
        side = {rep[graph.values[v].buffer] for v in region.side} - dropped
        side_bytes = sum(size[b] for b in side if graph.buffers[b].kind == ACT)
        module = block_module(graph, region, everywhere)
        blocks.append(
            ChunkedBlock(
                kind=region.kind,
                module=module,
                expand=graph.nodes[region.expand].module,
                exit=graph.nodes[region.exit_node].module,
                in_channels=region.in_channels,
                expanded_channels=region.channels,
                out_channels=region.out_channels,
                chunk_channels=per_chunk,
                chunk_bytes=chunk,
                residual=region.residual,
                two_pass=region.two_pass,
            )
        )
        op = "chunked block" if region.kind == "project" else "chunked head"
        shape = graph.values[region.exits[0]].shape if region.exits else None
        steps.append(
            step(op, module, region.inputs, region.exits, shape=shape, internal=chunk + side_bytes)
        )
    return steps, blocks


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
        where, live = (len(points), step.op, step.module, step.shape), held + step.internal
        points.append((step, LivePoint(*where, live, ins, outs, held - ins - outs, step.internal)))
    return points


def peak_point(points: Iterable[tuple[Step, LivePoint]]) -> LivePoint:
    return max(
        (p for _, p in points),
        key=lambda p: (p.live_bytes, -p.step),
        default=LivePoint(0, "", "", None, 0, 0, 0, 0, 0),
    )


def resolution_of(shape: tuple[int, ...]) -> tuple[tuple[int, int], int] | None:
    """((h, w), channels) of an activation shape, or None for ranks that have no map."""
    if len(shape) >= 4:
        return (shape[-2], shape[-1]), math.prod(shape[1:-2])
    if len(shape) in (1, 2):
        return (1, 1), shape[-1]
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
        if where is not None and (where[0] not in largest or size[b] > largest[where[0]][0]):
            largest[where[0]] = (size[b], where[1], shape)
    biggest_op: dict[tuple[int, int], tuple[int, str]] = {}
    for step, point in points:
        where = resolution_of(step.shape) if step.shape is not None else None
        if not step.outputs - step.inputs or where is None:
            continue  # views and in-place ops create nothing
        op_bytes = point.input_bytes + point.output_bytes + point.internal_bytes
        if where[0] not in biggest_op or op_bytes > biggest_op[where[0]][0]:
            biggest_op[where[0]] = (op_bytes, f"{step.module or '(model)'} {step.op}")
    rows = []
    for hw in sorted(largest, key=lambda r: (-r[0] * r[1], -r[0])):
        nbytes, channels, shape = largest[hw]
        rows.append(ResolutionMemory(hw, channels, nbytes, shape, *biggest_op.get(hw, (0, ""))))
    return tuple(rows)
