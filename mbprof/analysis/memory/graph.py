"""The traced graph: buffers (storages), values (tensors), nodes (aten ops), and its queries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ACT, PARAM, INPUT, CONST = "act", "param", "input", "const"


@dataclass
class Buffer:
    """One storage: what an allocator would hand out."""

    nbytes: int  # as traced
    itemsize: int
    floating: bool
    kind: str  # ACT, PARAM, INPUT or CONST
    created_at: int | None = None  # node that created it (ACT only)


@dataclass
class Value:
    """One tensor an op produced (a new version after an in-place op, a view of a buffer)."""

    buffer: int
    shape: tuple[int, ...]
    contiguous: bool
    nbytes: int  # numel x traced itemsize

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class Conv:
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    groups: int
    transposed: bool


@dataclass
class Node:
    index: int
    name: str  # aten op name without namespace and overload, e.g. "convolution"
    module: str  # the innermost module running when the op was dispatched ("" = top level)
    inputs: tuple[int, ...]  # value ids of the tensor arguments, in order
    outputs: tuple[int, ...]
    elementwise: bool  # torch tags it pointwise, or a batch norm, hard-swish, ...
    conv: Conv | None = None
    # the arguments of the ops ``ops.ARGS_KEPT`` names (a tensor's place holds ...), else ()
    args: tuple = ()


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    buffers: list[Buffer] = field(default_factory=list)
    outputs: tuple[int, ...] = ()  # the model's output values
    input_value: int | None = None
    consumers: list[list[int]] = field(default_factory=list)  # value -> node indices
    # names of the parameters some op read (``params_used`` of ``mbprof.analysis.counting``)
    params_read: frozenset[str] = frozenset()

    def kind(self, value: int) -> str:
        return self.buffers[self.values[value].buffer].kind

    def act_inputs(self, node: Node) -> list[int]:
        """Activation inputs of ``node`` (the image included), scalars left out."""
        found = dict.fromkeys(node.inputs)
        return [v for v in found if self.kind(v) in (ACT, INPUT) and self.values[v].numel > 1]


def is_unary(graph: Graph, node: Node) -> int | None:
    """The one activation input an element-wise op could overwrite, or None."""
    if not node.elementwise or not node.outputs:
        return None
    acts = graph.act_inputs(node)
    if len(acts) != 1 or graph.kind(acts[0]) != ACT:
        return None
    src, out = graph.values[acts[0]], graph.values[node.outputs[0]]
    fits = src.shape == out.shape and src.contiguous and out.contiguous
    whole = src.nbytes == graph.buffers[src.buffer].nbytes  # not a view of part of a buffer
    return acts[0] if fits and whole else None
