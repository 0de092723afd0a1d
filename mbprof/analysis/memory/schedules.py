"""The three schedules of one trace (eager, materialized, efficient), the chunkable blocks (inverted
residuals, widening heads, found by the graph's structure) and the liveness over them."""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mbprof.analysis.memory.graph import ACT, Graph, Node, Value, is_unary
from mbprof.analysis.memory.ops import ALIAS, PAD, REDUCE
from mbprof.core.records import ChunkedBlock, LivePoint, ResolutionMemory


@dataclass
class Region:
    """A chunkable block found in the graph."""

    kind: str  # "project" or "pool"
    nodes: list[int]  # the first: the widening conv
    exit_node: int  # the projection conv (or the last absorbed op), or the pooling op
    inputs: list[int]  # activation values it reads from outside
    exits: list[int]  # values it hands on
    spatial: list[int]  # the per-channel inner tensors (chunked)
    side: list[int]  # small per-channel vectors (pooled, squeeze-excitation)
    channels: int  # expanded channels C
    out_channels: int
    residual: bool = False
    two_pass: bool = False


def small(value: Value) -> bool:
    """A per-channel vector: (N, C) or (N, C, 1, 1), not a feature map."""
    return len(value.shape) <= 2 or math.prod(value.shape[2:]) == 1


def _try_block(graph: Graph, start: Node, taken: set[int]) -> Region | None:
    conv, acts = start.conv, graph.act_inputs(start)  # a conv: find_blocks asks of no other op
    if conv.transposed or conv.groups != 1 or conv.out_channels <= conv.in_channels:
        return None
    if len(acts) != 1 or not start.outputs:
        return None
    channels = conv.out_channels
    spatial = {start.outputs[0]}
    side: set[int] = set()
    region = [start.index]
    reduce_nodes: list[int] = []
    reentry = has_depthwise = side_read_outside = residual = False
    project: Node | None = None
    horizon = max(graph.consumers[start.outputs[0]], default=-1)

    def grow(into: set[int], node: Node, values: Iterable[int]) -> None:
        nonlocal horizon
        region.append(node.index)
        for v in values:
            into.add(v)
            horizon = max(horizon, *graph.consumers[v], -1)

    index = start.index + 1
    while index <= horizon:
        node = graph.nodes[index]
        index += 1
        if not any(v in spatial or v in side for v in node.inputs):
            continue
        if node.index in taken:
            return None
        node_acts = graph.act_inputs(node)
        outside = [v for v in node_acts if v not in spatial and v not in side]
        in_spatial = [v for v in node_acts if v in spatial]
        out = graph.values[node.outputs[0]] if node.outputs else None
        c = node.conv
        if (  # a 1x1 conv of the block's tensor alone, narrowing: the projection
            c is not None
            and (c.groups, c.transposed, c.out_channels < channels) == (1, False, True)
            and set(c.kernel) <= {1}
            and len(in_spatial) == len(node_acts) == 1
        ):
            if project is not None:
                return None
            project = node
            continue
        if out is None:
            return None
        if not in_spatial and not outside and all(small(graph.values[v]) for v in node.outputs):
            grow(side, node, node.outputs)  # squeeze-excitation branch or after global pooling
            continue
        if not in_spatial:
            side_read_outside = True
            continue
        if outside:
            return None  # mixes in an activation from outside (a shortcut, a concat)
        source = graph.values[in_spatial[0]]
        per_channel = source.shape[0] * channels  # one value per image and channel
        if node.name in REDUCE and len(node_acts) == 1 and small(out) and out.numel == per_channel:
            grow(side, node, node.outputs[:1])
            reduce_nodes.append(node.index)
            continue
        if len(out.shape) != 4 or out.shape[1] != channels:
            return None
        if c is not None:
            if c.transposed or not 1 < c.groups == c.in_channels == c.out_channels:  # depthwise
                return None
            has_depthwise = True
        elif node.name not in PAD and (
            out.shape != source.shape or not (node.name in ALIAS or node.elementwise)
        ):
            return None
        if any(v in side for v in node_acts):
            reentry = True
        grow(spatial, node, node.outputs[:1])  # batch-norm statistics are not tensors of the block

    outputs = set(graph.outputs)
    if spatial & outputs:
        return None
    if project is not None:
        if not has_depthwise or side_read_outside or side & outputs:
            return None
        nodes, value = [*region, project.index], project.outputs[0]
        if any(c not in nodes for v in spatial | side for c in graph.consumers[v]):
            return None
        # Take in the projection's element-wise ops and the residual add of the block's input.
        shortcut = {graph.values[v].buffer for v in acts}
        while value not in outputs and len(graph.consumers[value]) == 1:
            node = graph.nodes[graph.consumers[value][0]]
            pair = graph.act_inputs(node)
            if is_unary(graph, node) == value:
                pass
            elif (
                not residual
                and node.name == "add"
                and len(pair) == 2
                and value in pair
                and graph.values[[v for v in pair if v != value][0]].buffer in shortcut
                and graph.values[node.outputs[0]].shape == graph.values[value].shape
            ):
                residual = True
            else:
                break
            nodes.append(node.index)
            value = node.outputs[0]
        kind, exit_node, exits = "project", nodes[-1], [value]
        out_channels = project.conv.out_channels
    else:
        # A widening conv, per-channel ops, then global pooling (a head): keep only the side
        # ops that feed back into the block; the pooled vectors leave it.
        if not reduce_nodes or reentry:
            return None
        nodes = {start.index, *reduce_nodes}
        nodes |= {n for n in region if not all(v in side for v in graph.nodes[n].outputs)}
        if any(c not in nodes for v in spatial for c in graph.consumers[v]):
            return None
        kind, exit_node, out_channels, side = "pool", max(reduce_nodes), channels, ()
        exits = [v for n in reduce_nodes for v in graph.nodes[n].outputs[:1]]
    found = sorted(nodes), exit_node, acts, exits, sorted(spatial), sorted(side), channels
    return Region(kind, *found, out_channels, residual, reentry)


def find_blocks(graph: Graph) -> list[Region]:
    """Chunkable blocks, found by structure (docs/memory.md: the rule)."""
    regions: list[Region] = []
    taken: set[int] = set()
    for node in graph.nodes:
        if node.index in taken or node.conv is None:
            continue
        region = _try_block(graph, node, taken)
        if region is None or taken & set(region.nodes):
            continue
        regions.append(region)
        taken.update(region.nodes)
    return regions


def module_counts(graph: Graph, nodes: Iterable[int]) -> Counter[str]:
    """How many ops reading activations run inside each module path (recursively)."""
    counts: Counter[str] = Counter()
    for n in nodes:
        node = graph.nodes[n]
        if node.module and graph.act_inputs(node):
            parts = node.module.split(".")
            counts.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return counts


def block_module(graph: Graph, region: Region, everywhere: Counter[str]) -> str:
    """The smallest module holding the block and nothing else, or "first .. last"."""
    first, last = graph.nodes[region.nodes[0]].module, graph.nodes[region.exit_node].module
    inside = module_counts(graph, region.nodes)
    paths = [graph.nodes[n].module.split(".") for n in region.nodes if graph.nodes[n].module]
    common = ".".join(os.path.commonprefix(paths))
    if not common or everywhere[common] != inside[common]:
        return f"{first} .. {last}" if first != last else first
    while "." in common and everywhere[outer := common.rsplit(".", 1)[0]] == inside[outer]:
        common = outer
    return common


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


def materialized_buffers(graph: Graph) -> tuple[dict[int, int], set[int]]:
    """(buffer -> representative, dropped buffers) of the materialized mode."""
    # a buffer -> the one it overwrites: never a chain, as a buffer gets its parent at the op
    # that creates it, before any later op can take it as a parent
    parent: dict[int, int] = {}
    last_use: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            last_use[graph.values[v].buffer] = node.index
    last_use.update((graph.values[v].buffer, len(graph.nodes)) for v in graph.outputs)

    dropped: set[int] = set()
    for node in graph.nodes:
        for b in (graph.values[v].buffer for v in node.outputs[1:]):
            if graph.buffers[b].created_at == node.index and b not in last_use:
                dropped.add(b)  # never read: max-pool indices, batch-norm statistics
        src = is_unary(graph, node)
        if src is None:
            continue
        source, fresh = graph.values[src].buffer, graph.values[node.outputs[0]].buffer
        into, made = parent.get(source, source), graph.buffers[fresh]
        if made.created_at != node.index or made.nbytes != graph.buffers[source].nbytes:
            continue
        if last_use.get(into) != node.index:
            continue  # the input is read later (a shortcut): the op needs a new tensor
        parent[fresh] = into
        last_use[into] = last_use.get(fresh, node.index)
    return {b: parent.get(b, b) for b in range(len(graph.buffers))}, dropped


def schedule(
    graph: Graph,
    rep: dict[int, int] | range,
    dropped: set[int] = frozenset(),
    regions: Sequence[Region] = (),
    size: Sequence[int] | None = None,
    element: int = 0,
    chunks: int | None = None,
) -> tuple[list[Step], list[ChunkedBlock]]:
    """One step per op on the buffers ``rep`` merges into; each region one chunked step at
    its last node (``size``, ``element``: bytes of a buffer, of an element in the dtype)."""

    def step(op: str, module: str, ins: Iterable[int], outs: Sequence[int], internal=0) -> Step:
        def acts(values: Iterable[int]) -> list[tuple[int, tuple[int, ...]]]:
            found = [(rep[graph.values[v].buffer], graph.values[v].shape) for v in values]
            return [(b, shape) for b, shape in found if graph.buffers[b].kind == ACT]

        kept = acts(v for v in outs if graph.values[v].buffer not in dropped)
        inputs, outputs = (frozenset(b for b, _ in pairs) for pairs in (acts(ins), kept))
        shape = graph.values[outs[0]].shape if outs else None
        return Step(op, module, inputs, outputs, shape, tuple(kept), internal)

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
            steps.append(step(node.name, node.module, node.inputs, node.outputs))
            continue
        if node.index != region.exit_node:
            continue
        per_chunk = math.ceil(region.channels / min(chunks or region.channels, region.channels))
        chunk = max(
            value_bytes(v) // region.channels * per_chunk
            for v in region.spatial
            if graph.values[v].shape[1] == region.channels
        )
        side = {rep[graph.values[v].buffer] for v in region.side} - dropped
        side_bytes = sum(size[b] for b in side if graph.buffers[b].kind == ACT)
        module, expand = block_module(graph, region, everywhere), graph.nodes[region.nodes[0]]
        blocks.append(
            ChunkedBlock(
                kind=region.kind,
                module=module,
                expand=expand.module,
                exit=graph.nodes[region.exit_node].module,
                in_channels=expand.conv.in_channels,
                expanded_channels=region.channels,
                out_channels=region.out_channels,
                chunk_channels=per_chunk,
                chunk_bytes=chunk,
                residual=region.residual,
                two_pass=region.two_pass,
            )
        )
        op = "chunked block" if region.kind == "project" else "chunked head"
        steps.append(step(op, module, region.inputs, region.exits, chunk + side_bytes))
    return steps, blocks


def alive(spans: Iterable[tuple[int, int, int]], steps: int) -> list[int]:
    """Bytes alive at each of ``steps`` steps, of (first step, last step, bytes) spans."""
    delta = [0] * (steps + 1)
    for first, last, nbytes in spans:
        delta[first] += nbytes
        delta[last + 1] -= nbytes
    return list(itertools.accumulate(delta))[:steps]


def simulate(
    steps: Sequence[Step], size: Sequence[int], keep: Iterable[int] = ()
) -> list[tuple[Step, LivePoint]]:
    """Live bytes at each step that touches an activation."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for b in step.outputs | step.inputs:
            first.setdefault(b, i)
            last[b] = i
    last.update((b, len(steps) - 1) for b in keep if b in first)
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
    points: Sequence[tuple[Step, LivePoint]], size: Sequence[int]
) -> tuple[ResolutionMemory, ...]:
    """Per spatial size: the largest buffer, and the op with the most bytes there."""
    shape_of: dict[int, tuple[int, ...]] = {}
    for step, _ in points:
        for b, shape in step.out_shapes:
            shape_of.setdefault(b, shape)  # the shape it was created with, not a later view
    largest: dict[tuple[int, int], tuple[int, int, tuple[int, ...]]] = {}  # channels, bytes, shape
    for b, shape in shape_of.items():
        where = resolution_of(shape)
        if where is not None and (where[0] not in largest or size[b] > largest[where[0]][1]):
            largest[where[0]] = (where[1], size[b], shape)
    biggest_op: dict[tuple[int, int], tuple[int, str]] = {}
    for step, point in points:
        where = resolution_of(step.shape) if step.shape is not None else None
        if not step.outputs - step.inputs or where is None:
            continue  # views and in-place ops create nothing
        op_bytes = point.input_bytes + point.output_bytes + point.internal_bytes
        if where[0] not in biggest_op or op_bytes > biggest_op[where[0]][0]:
            biggest_op[where[0]] = (op_bytes, f"{step.module or '(model)'} {step.op}")
    order = sorted(largest, key=lambda r: (-r[0] * r[1], -r[0]))
    return tuple(ResolutionMemory(hw, *largest[hw], *biggest_op.get(hw, (0, ""))) for hw in order)
