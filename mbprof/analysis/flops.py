"""FLOPs in the other common convention: 2 per multiply-accumulate, plus element-wise work."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from torch import nn

from mbprof.analysis.memory.graph import Graph, Node
from mbprof.analysis.memory.ops import BATCH_NORM, REDUCE, SAME_AS_INPUT
from mbprof.analysis.memory.trace import trace
from mbprof.core.records import FlopsCount

# kind -> its rule, in the order a report lists them.
KINDS = {
    "multiply_adds": "2 per multiply-accumulate of a convolution or matrix product (2 x MAdds)",
    "bias": "1 per output element of a convolution or linear layer that adds a bias",
    "batch_norm": "2 per element (scale and shift; 1 without affine), as fvcore counts it",
    "pooling": "1 per input element of a pooling or mean (one sum or comparison each)",
    "activations": "1 per output element (ReLU, ReLU6, hard-swish, sigmoid, softmax, ...)",
    "additions": "1 per output element of an element-wise add, subtract or negation "
    "(residual adds)",
    "multiplications": "1 per output element of an element-wise multiply or divide "
    "(squeeze-excitation scaling)",
}
MATMUL = frozenset({"addmm", "mm", "bmm", "baddbmm", "matmul"})
# op -> its kind of element-wise work (pooling counts its first input's elements, the others
# their output's). The memory analysis' tables (``ops``) name the global reductions and the
# activations; these add the ops that only the FLOPs count tells apart.
ELEMENTWISE = {
    op: kind
    for kind, ops in (
        ("pooling", REDUCE | {"avg_pool1d", "avg_pool3d", "adaptive_avg_pool1d", "max_pool1d"}),
        ("pooling", {"adaptive_avg_pool3d", "max_pool3d", "max_pool3d_with_indices"}),
        ("activations", (SAME_AS_INPUT - {"neg"}) | {"prelu", "_prelu_kernel", "threshold"}),
        ("activations", {"softmax", "_softmax", "log_softmax", "_log_softmax"}),
        ("additions", {"add", "sub", "rsub", "neg"}),
        ("multiplications", {"mul", "div"}),
    )
    for op in ops
}
# Ops that only move or allocate data.
FREE = frozenset(
    (
        "empty empty_like new_empty zeros zeros_like ones zero fill view _unsafe_view reshape "
        "_reshape_alias alias detach t transpose permute expand unsqueeze squeeze flatten clone "
        "contiguous _to_copy copy lift_fresh cat stack slice select narrow split split_with_sizes "
        "chunk unbind as_strided constant_pad_nd pad dropout"
    ).split()
)


def multiply_adds(graph: Graph, node: Node) -> tuple[int, int]:
    """(2 x multiply-accumulates, bias additions) of a convolution or matrix product."""
    out, conv = graph.values[node.outputs[0]].numel, node.conv
    if conv is not None:
        channels, elements = conv.in_channels, out
        if conv.transposed:  # each input element meets out_channels / groups x kernel weights
            channels, elements = conv.out_channels, graph.values[node.inputs[0]].numel
        macs = elements * (channels // conv.groups) * math.prod(conv.kernel)
        return 2 * macs, out if len(node.inputs) >= 3 else 0
    shape = [graph.values[v].shape for v in node.inputs]
    bias = node.name.rstrip("_") in ("addmm", "baddbmm")
    a, b = (shape[1], shape[2]) if bias else (shape[0], shape[1])
    macs = math.prod(a) * b[-1]  # (..., M, K) x (..., K, N): M x K x N per matrix pair
    return 2 * macs, out if bias else 0


def count_flops(
    model: nn.Module, input_shape: Sequence[int], graph: Graph | None = None
) -> FlopsCount:
    """FLOPs of ``model`` for one image, from ``graph`` or a new meta-device trace."""
    graph = graph or trace(model, input_shape)
    kinds: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
    uncounted: Counter[str] = Counter()
    for node in graph.nodes:
        base = node.name[:-1] if node.name.endswith("_") else node.name
        if base in FREE or not node.outputs:
            continue
        if node.conv is not None or base in MATMUL:
            madds, bias = multiply_adds(graph, node)
            kinds["multiply_adds"] += madds
            kinds["bias"] += bias
        elif node.name in BATCH_NORM:
            affine = len(node.inputs) >= 4  # input, weight, (bias), running mean and var
            kinds["batch_norm"] += (2 if affine else 1) * graph.values[node.inputs[0]].numel
        elif (kind := ELEMENTWISE.get(base)) is not None:
            counted = (node.inputs if kind == "pooling" else node.outputs)[0]
            kinds[kind] += graph.values[counted].numel
        else:
            uncounted[f"aten::{node.name}"] += 1
    by_kind = {kind: n // int(input_shape[0]) for kind, n in kinds.items()}
    return FlopsCount(sum(by_kind.values()), by_kind, dict(KINDS), dict(uncounted))
