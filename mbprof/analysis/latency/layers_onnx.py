"""Where an ONNX Runtime session's time goes, layer by layer: ONNX Runtime's own per-node
profile, mapped back to module paths through the exported graph.

torch.onnx's exporter writes, on every node, the module scopes it came from
(``pkg.torch.onnx.name_scopes``: ``['', 'features', 'features.0', 'features.0.1', 'op']``,
the innermost module last but one). ONNX Runtime then rewrites the graph (convolution,
batch norm and activation fused into one node; NCHWc layout nodes added) and profiles the
nodes it runs, under new names. Each profiled node is traced back, in order, by: its own
name in the exported graph; that name less the suffixes ONNX Runtime adds (``_nchwc``,
``_token_12``, ...) as a node or as the tensor a node wrote; the tensors the optimised
node writes, then reads (a layout node belongs to the layer whose tensor it converts).
A fused convolution found through its activation or batch norm is walked back to the
convolution, and a batch norm folded into the convolution before it is that convolution's.
A node that cannot be traced gets a row of its own, marked unmapped.
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mbprof.analysis.latency.layers import RawLayer, RawProfile, display_path

HEAVY = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"}
SUFFIX = re.compile(r"(_nchwc|_token_\d+|_fused\w*|_kernel_time)$", re.IGNORECASE)


@dataclass(frozen=True)
class ExportedNode:
    name: str
    op: str
    path: str | None  # the innermost module scope, None when the exporter wrote none
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """The exported graph, indexed: nodes by name, and the node that writes each tensor."""

    nodes: Mapping[str, ExportedNode]
    writer: Mapping[str, str]  # tensor -> node name
    weights: Mapping[str, int]  # initializer -> bytes

    @classmethod
    def of(cls, nodes: list[ExportedNode], weights: Mapping[str, int] | None = None) -> Graph:
        writer = {tensor: node.name for node in nodes for tensor in node.outputs}
        return cls({node.name: node for node in nodes}, writer, dict(weights or {}))


def scope_path(scopes: str) -> str | None:
    """The module path in a node's ``pkg.torch.onnx.name_scopes`` (its last module)."""
    try:
        names = ast.literal_eval(scopes)
    except (ValueError, SyntaxError):
        return None
    return names[-2] if isinstance(names, list) and len(names) >= 2 else None


def read_graph(path: str | Path) -> Graph:
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    weights = {}
    for tensor in model.graph.initializer:
        count = 1
        for d in tensor.dims:
            count *= d
        weights[tensor.name] = count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    nodes = []
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        nodes.append(
            ExportedNode(
                name=node.name,
                op=node.op_type,
                path=scope_path(scopes) if scopes else None,
                inputs=tuple(node.input),
                outputs=tuple(node.output),
            )
        )
    return Graph.of(nodes, weights)


def _candidates(name: str, optimised: ExportedNode | None) -> list[tuple[str, str]]:
    """(kind, key) pairs to look a profiled node up by, best first."""
    found = [("node", name)]
    stripped = name
    while SUFFIX.search(stripped):
        stripped = SUFFIX.sub("", stripped)
        found += [("node", stripped), ("tensor", stripped)]
    if optimised is not None:
        found += [("tensor", t) for t in optimised.outputs if t]
        found += [("tensor", t) for t in optimised.inputs if t]
    return found


def _walk_to_heavy(graph: Graph, node: ExportedNode, steps: int = 4) -> ExportedNode:
    """From an activation or batch norm back to the convolution (or product) it follows."""
    current = node
    for _ in range(steps):
        if current.op in HEAVY:
            return current
        if not current.inputs or current.inputs[0] not in graph.writer:
            break
        current = graph.nodes[graph.writer[current.inputs[0]]]
    return node


def map_node(
    name: str,
    op: str,
    graph: Graph,
    optimised: Mapping[str, ExportedNode],
    folded: Mapping[str, str],
) -> str | None:
    """The module path of a profiled node (``name``, ONNX Runtime's ``op``), or None.
    ``folded`` maps a batch norm's path to the convolution it was folded into."""
    for kind, key in _candidates(name, optimised.get(name)):
        node_name = key if kind == "node" else graph.writer.get(key)
        node = graph.nodes.get(node_name or "")
        if node is None:
            continue
        if op in HEAVY:
            node = _walk_to_heavy(graph, node)
        if node.path is None:
            continue
        return folded.get(node.path, node.path)
    return None


def folded_norms(module) -> dict[str, str]:
    """Batch norm path -> the path of the convolution registered just before it with as
    many output channels (the exporter folds such a batch norm into that convolution and
    names the result after the batch norm)."""
    from torch import nn

    folded, previous = {}, None
    for path, child in module.named_modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and previous is not None:
            conv_path, conv = previous
            if conv.out_channels == child.num_features:
                folded[path] = conv_path
        if isinstance(child, nn.modules.conv._ConvNd):
            previous = (path, child)
        elif next(child.children(), None) is None and not isinstance(
            child, nn.modules.batchnorm._BatchNorm
        ):
            previous = None
    return folded


def node_bytes(args: Mapping, node: ExportedNode | None, weights: Mapping[str, int]) -> int:
    """What a profiled node read and wrote: its activations in and out (ONNX Runtime's
    ``activation_size`` and ``output_size``) and its weights (the optimised graph's
    initializers it reads: a prepacked weight is missing from the profile's own figures)."""
    total = int(args.get("activation_size", 0)) + int(args.get("output_size", 0))
    if node is not None:
        total += sum(weights.get(t, 0) for t in set(node.inputs))
    return total


def profile_onnx(
    onnx_path: Path,
    feed: dict,
    threads: int,
    passes: int,
    module,
    warmup: int = 2,
) -> RawProfile:
    """Per-layer times of the ONNX model at ``onnx_path`` over ``passes`` profiled runs
    of ``feed`` with ``threads`` intra-op threads, mapped to the module paths of ``module``
    (the torch module it was exported from)."""
    import onnxruntime as ort

    from mbprof.analysis.latency.backends import session_options

    folder = onnx_path.parent
    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "profile")
    options.optimized_model_filepath = str(folder / "optimised.onnx")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        session.run(None, feed)
    walls = []
    for _ in range(passes):
        start = time.perf_counter()
        session.run(None, feed)
        walls.append((time.perf_counter() - start) * 1e3)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    graph = read_graph(onnx_path)
    optimised = read_graph(folder / "optimised.onnx")
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[
        -passes:
    ]
    return aggregate(events, runs, graph, optimised, folded_norms(module), module, walls)


def aggregate(events, runs, graph, optimised: Graph, folded, module, walls) -> RawProfile:
    """The rows of a parsed ONNX Runtime profile: node events (``cat`` "Node", names
    ending ``_kernel_time``) within the ``runs`` windows, summed per module path."""
    kinds = {path: type(m).__name__ for path, m in module.named_modules()}
    per_pass: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(runs))
    rows: dict[str, RawLayer] = {}
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        k = next((i for i, (a, b) in enumerate(runs) if a <= event["ts"] <= b), None)
        if k is None:
            continue
        name = event["name"][: -len("_kernel_time")]
        op = event.get("args", {}).get("op_name", "")
        path = map_node(name, op, graph, optimised.nodes, folded)
        key = display_path(path) if path is not None else f"{op} {name}"
        if key not in rows:
            kind = kinds.get(path, op) if path is not None else op
            rows[key] = RawLayer(key, kind, mapped=path is not None)
        per_pass[key][k] += float(event["dur"])
        if k == 0:
            row = rows[key]
            row.bytes_moved += node_bytes(
                event.get("args", {}), optimised.nodes.get(name), optimised.weights
            )
            row.ops += 1
    for key, row in rows.items():
        row.times_us = per_pass[key]
    if len(walls) != len(runs):
        walls = [statistics.median(walls)] * len(runs)
    return RawProfile(rows=list(rows.values()), walls_ms=walls)
