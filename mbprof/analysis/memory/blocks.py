"""Chunkable blocks (inverted residuals, widening heads), found by the graph's structure."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from mbprof.analysis.memory.graph import Graph, Node, Value, is_unary
from mbprof.analysis.memory.ops import ALIAS, PAD, REDUCE


@dataclass
class Region:
    """A chunkable block found in the graph."""

    kind: str  # "project" or "pool"
    nodes: list[int]
    expand: int  # node of the widening conv
    exit_node: int  # the projection conv (or the last absorbed op), or the pooling op
    inputs: list[int]  # activation values it reads from outside
    exits: list[int]  # values it hands on
    spatial: list[int]  # the per-channel inner tensors (chunked)
    side: list[int]  # small per-channel vectors (pooled, squeeze-excitation)
    channels: int  # expanded channels C
    in_channels: int
    out_channels: int
    residual: bool = False
    two_pass: bool = False


def small(value: Value) -> bool:
    """A per-channel vector: (N, C) or (N, C, 1, 1), not a feature map."""
    return len(value.shape) <= 2 or math.prod(value.shape[2:]) == 1


def _try_block(graph: Graph, start: Node, taken: set[int]) -> Region | None:
    conv = start.conv
    if conv is None or not conv.dense or conv.out_channels <= conv.in_channels:
        return None
    acts = graph.act_inputs(start)
    if len(acts) != 1 or not start.outputs:
        return None
    channels = conv.out_channels
    spatial = {start.outputs[0]}
    side: set[int] = set()
    region = [start.index]
    reduce_nodes: list[int] = []
    reentry = False
    has_depthwise = False
    project: Node | None = None
    outside_side_consumers: set[int] = set()
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
        if (
            c is not None
            and c.dense
            and all(k == 1 for k in c.kernel)
            and in_spatial
            and not outside
            and len(node_acts) == 1
            and c.out_channels < channels
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
            outside_side_consumers.add(node.index)
            continue
        if outside:
            return None  # mixes in an activation from outside (a shortcut, a concat)
        source = graph.values[in_spatial[0]]
        if (
            node.name in REDUCE
            and len(node_acts) == 1
            and small(out)
            and out.numel == source.shape[0] * channels
        ):
            grow(side, node, node.outputs[:1])
            reduce_nodes.append(node.index)
            continue
        if len(out.shape) != 4 or out.shape[1] != channels:
            return None
        if c is not None:
            if not c.depthwise:
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
        if not has_depthwise or outside_side_consumers or side & outputs:
            return None
        allowed = set(region) | {project.index}
        if any(c not in allowed for v in spatial | side for c in graph.consumers[v]):
            return None
        # Take in the projection's element-wise ops and the residual add of the block's input.
        nodes, value, residual = [*region, project.index], project.outputs[0], False
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
        return Region(
            kind="project",
            nodes=sorted(nodes),
            expand=start.index,
            exit_node=nodes[-1],
            inputs=list(acts),
            exits=[value],
            spatial=sorted(spatial),
            side=sorted(side),
            channels=channels,
            in_channels=conv.in_channels,
            out_channels=project.conv.out_channels,
            residual=residual,
            two_pass=reentry,
        )
    # A widening conv, per-channel ops, then global pooling (a head): keep only the side
    # ops that feed back into the block; the pooled vectors leave it.
    if not reduce_nodes or reentry:
        return None
    kept = {
        n
        for n in region
        if n == start.index
        or n in reduce_nodes
        or not all(v in side for v in graph.nodes[n].outputs)
    }
    if any(c not in kept for v in spatial for c in graph.consumers[v]):
        return None
    exits = [v for n in reduce_nodes for v in graph.nodes[n].outputs[:1]]
    return Region(
        kind="pool",
        nodes=sorted(kept),
        expand=start.index,
        exit_node=max(reduce_nodes),
        inputs=acts,
        exits=exits,
        spatial=sorted(spatial),
        side=[],
        channels=channels,
        in_channels=conv.in_channels,
        out_channels=channels,
    )


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


def chunk_channels(channels: int, chunks: int | None) -> int:
    return 1 if chunks is None else math.ceil(channels / min(chunks, channels))


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
    first = graph.nodes[region.expand].module
    last = graph.nodes[region.exit_node].module
    inside = module_counts(graph, region.nodes)

    def only_block(path: str) -> bool:
        return everywhere[path] == inside[path]

    paths = [graph.nodes[n].module.split(".") for n in region.nodes if graph.nodes[n].module]
    common = ".".join(os.path.commonprefix(paths))
    if not common or not only_block(common):
        return f"{first} .. {last}" if first != last else first
    while "." in common and only_block(common.rsplit(".", 1)[0]):
        common = common.rsplit(".", 1)[0]
    return common
