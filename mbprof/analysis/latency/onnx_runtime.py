"""ONNX Runtime: the model exported with torch.onnx, run by a CPU session (fp32 or int8 QDQ)
and profiled by its own profiler."""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mbprof.analysis.collector import quiet
from mbprof.analysis.latency import runtimes
from mbprof.analysis.latency.runtimes import Deployed, Prepared, RawProfile, Rows


def onnx_session(model: nn.Module, example: torch.Tensor, threads: int, folder: Path):
    """Export ``model`` to ``folder``/model.onnx and open a session: (session, input name)."""
    path = folder / "model.onnx"
    with quiet(), runtimes.failing("ONNX export failed"):
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            external_data=False,
            verbose=False,
        )
    session = open_session(path, threads)
    return session, session.get_inputs()[0].name


def open_session(path: Path, threads: int, profile: Path | None = None) -> Any:
    """An ONNX Runtime CPU session on ``path`` (``profile``: profiling into that folder)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile / "profile")
        options.optimized_model_filepath = str(profile / "optimised.onnx")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_int8(fp32_path: Path, input_name: str, shape: tuple[int, ...]) -> Path:
    """ONNX Runtime's static QDQ int8 quantization of ``fp32_path``; the int8 file's path."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{input_name: b.numpy()} for b in runtimes.random_batches(shape)])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    prepared = fp32_path.with_name("model.pre.onnx")
    int8_path = fp32_path.with_name("model.int8.onnx")
    with runtimes.failing("ONNX Runtime int8 quantization failed"):
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference, basic fusions
        quantize_static(
            str(prepared),
            str(int8_path),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return int8_path


def prepare(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """ONNX Runtime: the model exported and opened (int8: quantized, fp32 timed beside it)."""
    model, example, settings, notes = form.model, form.example, form.settings, form.notes
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mbprof-onnx-")))
    int8 = settings.quantize == "int8"
    start = time.perf_counter()
    fp32, name = onnx_session(model, example, settings.threads, folder)
    path, timed = folder / "model.onnx", fp32
    if int8:
        # "": the root logger, through which ONNX Runtime's quantizer advises
        with quiet(("torch.onnx", "onnxscript", "torch.export", "")):
            path = onnx_int8(path, name, tuple(example.shape))
        timed = open_session(path, settings.threads)
    compile_s = time.perf_counter() - start
    feed = {name: example.numpy()}
    figures: dict[str, Any] = {"deployed_bytes": path.stat().st_size}
    if int8:
        notes.append(
            "int8: ONNX Runtime static QDQ quantization (weights int8 per channel, "
            f"activations int8 min-max over {runtimes.CALIBRATION_BATCHES} random batches of "
            "the input shape)"
        )
        figures["fp32_deployed_bytes"] = (folder / "model.onnx").stat().st_size
    quantization = "int8 quantization + " if int8 else ""
    notes.append(f"compile_s: ONNX export + {quantization}ONNX Runtime session creation")
    logits = lambda session: lambda x: session.run(None, {name: x.numpy()})[0]  # noqa: E731
    return runtimes.exported(
        form,
        "ONNX Runtime",
        logits(fp32),
        logits(timed) if int8 else None,
        run=lambda: timed.run(None, feed),
        compile_s=compile_s,
        reference=(lambda: fp32.run(None, feed)) if int8 else None,
        figures=figures,
        threads=lambda: None,
        layers=lambda n: profile_onnx(path, feed, settings.threads, Rows(model, example, n)),
        how="ONNX Runtime's own profile, {passes} runs, each node's kernel time",
    )


HEAVY = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"}
SUFFIX = re.compile(r"(_nchwc|_token_\d+|_fused\w*|_kernel_time)$", re.IGNORECASE)


@dataclass(frozen=True)
class ExportedNode:
    name: str
    op: str
    path: str | None  # the innermost module scope, None when the exporter wrote none
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class Graph:
    """The exported graph, indexed: nodes by name, each tensor's writer, initializers' bytes."""

    def __init__(self, nodes: list[ExportedNode], weights: Mapping[str, int] | None = None):
        self.nodes = {node.name: node for node in nodes}
        self.writer = {tensor: node.name for node in nodes for tensor in node.outputs}
        self.weights = dict(weights or {})


def read_graph(path: str | Path) -> Graph:
    from onnx import helper, load

    model = load(str(path), load_external_data=False)
    weights = {
        t.name: math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        for t in model.graph.initializer
    }
    nodes = []
    for node in model.graph.node:
        scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes")
        names = None
        with contextlib.suppress(ValueError, SyntaxError):  # the path: the scopes' last module
            names = ast.literal_eval(scopes) if scopes else None
        path = names[-2] if isinstance(names, list) and len(names) >= 2 else None
        nodes.append(ExportedNode(node.name, node.op_type, path, (*node.input,), (*node.output,)))
    return Graph(nodes, weights)


def map_node(
    name: str,
    op: str,
    graph: Graph,
    optimised: Mapping[str, ExportedNode],
    folded: Mapping[str, str],
) -> str | None:
    """The module path of a profiled node (``name``, ONNX Runtime's ``op``), or None."""
    keys = [("node", name)]  # (kind, key) pairs to look it up by, best first
    stripped = name
    while SUFFIX.search(stripped):
        stripped = SUFFIX.sub("", stripped)
        keys += [("node", stripped), ("tensor", stripped)]
    if name in optimised:
        keys += [("tensor", t) for t in (*optimised[name].outputs, *optimised[name].inputs) if t]
    for kind, key in keys:
        node = graph.nodes.get((key if kind == "node" else graph.writer.get(key)) or "")
        current = node
        # from an activation or batch norm back to the convolution (or product) it follows
        for _ in range(4 if node is not None and op in HEAVY else 0):
            if current.op in HEAVY:
                node = current
                break
            if not current.inputs or current.inputs[0] not in graph.writer:
                break
            current = graph.nodes[graph.writer[current.inputs[0]]]
        if node is not None and node.path is not None:
            return folded.get(node.path, node.path)
    return None


def folded_norms(module: nn.Module) -> dict[str, str]:
    """Batch norm path -> the convolution before it that the exporter folds it into."""
    folded, previous = {}, None
    for path, child in module.named_modules():
        norm = isinstance(child, nn.modules.batchnorm._BatchNorm)
        if norm and previous is not None and previous[1].out_channels == child.num_features:
            folded[path] = previous[0]
        if isinstance(child, nn.modules.conv._ConvNd):
            previous = (path, child)
        elif next(child.children(), None) is None and not norm:
            previous = None
    return folded


def node_bytes(args: Mapping, node: ExportedNode | None, weights: Mapping[str, int]) -> int:
    """Bytes a profiled node read and wrote, its weights included."""
    total = int(args.get("activation_size", 0)) + int(args.get("output_size", 0))
    if node is not None:
        total += sum(weights.get(t, 0) for t in set(node.inputs))
    return total


def profile_onnx(
    onnx_path: Path, feed: dict, threads: int, rows: Rows, warmup: int = 2
) -> RawProfile:
    """Per-layer times of the ONNX model at ``onnx_path``, summed into ``rows`` (its module's)."""
    passes = rows.passes
    session = open_session(onnx_path, threads, profile=onnx_path.parent)
    walls = []
    for k in range(-warmup, passes):
        start = time.perf_counter()
        session.run(None, feed)
        if k >= 0:
            walls.append((time.perf_counter() - start) * 1e3)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    graph = read_graph(onnx_path)
    optimised = read_graph(onnx_path.parent / "optimised.onnx")
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    runs = runs[-passes:]
    rows.passes = len(runs)  # the passes the profile kept
    folded = folded_norms(rows.module)
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        if (k := next((i for i, (a, b) in enumerate(runs) if a <= event["ts"] <= b), None)) is None:
            continue
        name, args = event["name"][: -len("_kernel_time")], event.get("args", {})
        op = args.get("op_name", "")
        path = map_node(name, op, graph, optimised.nodes, folded)
        row = rows.at(path, path or f"{op} {name}", op, mapped=path is not None)
        row.times_us[k] += float(event["dur"])
        if k == 0:
            row.bytes_moved += node_bytes(args, optimised.nodes.get(name), optimised.weights)
            row.ops += 1
    if len(walls) != len(runs):
        walls = [statistics.median(walls)] * len(runs)
    return RawProfile(rows=list(rows.values()), walls_ms=walls)
