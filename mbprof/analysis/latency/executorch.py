"""ExecuTorch with its XNNPACK delegate: export, int8 (PT2E), lowering, the program cache; the
lowered program run from Python, and its ETDump."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from mbprof.analysis.collector import native_quiet
from mbprof.analysis.latency import runtimes
from mbprof.analysis.latency.runtimes import Deployed, Prepared, RawProfile, Rows
from mbprof.core.errors import MbprofError
from mbprof.core.files import cache_dir, write_atomic
from mbprof.core.settings import LatencySettings

# Conversions the int8 graph is full of: part of the quantized operators, not counted apart.
QUANT_OPS = ("quantize_per_tensor", "quantize_per_channel", "dequantize_per_tensor",
             "dequantize_per_channel", "choose_qparams")  # fmt: skip


@functools.cache
def modules() -> SimpleNamespace:
    """ExecuTorch's pieces, imported once (seconds)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with native_quiet():
            import executorch.extension.pybindings.portable_lib as portable
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
                XnnpackPartitioner as partitioner,
            )
            from executorch.exir import to_edge_transform_and_lower as lower
            from executorch.runtime import Runtime as runtime
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return SimpleNamespace(portable=portable, partitioner=partitioner, lower=lower, runtime=runtime)


@dataclass(frozen=True)
class Fallback:
    """An operator left outside XNNPACK: its name and the module it belongs to."""

    op: str  # e.g. "aten.avg_pool2d.default"
    path: str  # e.g. "stage2.0.shortcut"; "" for the model itself


@dataclass(frozen=True)
class Delegation:
    """What the XNNPACK partitioner took, and the operators left to the portable kernels."""

    delegated_ops: int
    partitions: int
    fallbacks: tuple[Fallback, ...] = ()

    def note(self) -> str:
        took = f"XNNPACK took {self.delegated_ops} operators in {self.partitions} partition"
        took += "" if self.partitions == 1 else "s"
        if not self.fallbacks:
            return f"executorch: {took}; none ran on the portable kernels"
        listed = []
        for op in dict.fromkeys(f.op for f in self.fallbacks):
            paths = [f.path or "(model)" for f in self.fallbacks if f.op == op]
            where = ", ".join(list(dict.fromkeys(paths))[:4]) + (", ..." if len(paths) > 4 else "")
            listed.append(f"{op} x{len(paths)} ({where})")
        return (
            f"executorch: {took}; {len(self.fallbacks)} ran on the portable kernels: "
            f"{'; '.join(listed)}. These are slow: portable kernels are ExecuTorch's plain "
            "reference loops (one thread, no SIMD), and one between XNNPACK operators splits "
            "the delegate's graph, with tensors copied in and out of it"
        )


def _name(node: Any) -> str:
    return getattr(node.target, "__name__", str(node.target))


def _path(node: Any) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _counted(node: Any) -> bool:
    return node.op == "call_function" and _name(node) != "getitem"


# kind -> (graph nodes XNNPACK runs as one operator each, its operators' name prefixes); other
# nodes (batch norm, activations) fuse into the convolution before them, other operators are layout
KINDS = {
    "conv": (
        "convolution.default linear.default mm.default addmm.default",
        "Convolution|Fully Connected|Deconvolution",
    ),
    "add": ("add.Tensor", "Add"),
    "sub": ("sub.Tensor", "Subtract"),
    "mul": ("mul.Tensor", "Multiply"),
    "div": ("div.Tensor", "Divide"),
    "mean": ("mean.dim", "Mean|Global Average Pooling"),
    "avg_pool": ("avg_pool2d.default", "Average Pooling"),
    "max_pool": ("max_pool2d.default max_pool2d_with_indices.default", "Max Pooling"),
    "hardswish": ("hardswish.default", "Hardswish"),
    "sigmoid": ("sigmoid.default", "Sigmoid"),
    "cat": ("cat.default", "Concatenate"),
    "softmax": ("_softmax.default", "Softmax"),
}
ATEN_KINDS = {f"aten.{op}": kind for kind, (ops, _) in KINDS.items() for op in ops.split()}
XNNPACK_KINDS = {name: kind for kind, (_, names) in KINDS.items() for name in names.split("|")}
# Per XNNPACK partition, in execution order: kind ("conv", "add", ...) -> the module paths of
# its nodes of that kind, in graph order (``layer_profile`` matches XNNPACK's operators to them).
Partitions = tuple[dict[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Lowered:
    """A lowered program: bytes, delegation, operators needed, partitions and lowering seconds."""

    pte: bytes
    delegation: Delegation
    operators: tuple[str, ...]
    seconds: float | None
    cached_s: float | None = None
    partitions: Partitions = ()


# Programs lowered in this process, by program key (newest last): the same graph and weights
# prepared again (``bench --layers``, an int8 run's fp32 reference) are not lowered again.
_LOWERED: dict[str, Lowered] = {}
KEEP_LOWERED = 4


def delegation_of(graph_module: Any) -> tuple[Delegation, Partitions]:
    """The delegation and each partition's compute nodes by kind, from a lowered edge graph."""
    delegated = 0
    fallbacks, found = [], []
    for node in graph_module.graph.nodes:
        if not _counted(node):
            continue
        if _name(node) != "executorch_call_delegate":
            fallbacks.append(Fallback(_name(node), _path(node)))
            continue
        inner = getattr(graph_module, node.args[0].target).original_module.graph.nodes
        delegated += sum(_counted(n) and not any(q in _name(n) for q in QUANT_OPS) for n in inner)
        kinds: dict[str, list[str]] = {}
        for n in inner:
            if n.op == "call_function" and (kind := ATEN_KINDS.get(_name(n))):
                kinds.setdefault(kind, []).append(_path(n))
        found.append({kind: tuple(paths) for kind, paths in kinds.items()})
    return Delegation(delegated, len(found), tuple(fallbacks)), tuple(found)


def lower(
    model: nn.Module, example: torch.Tensor, quantize: str = "none", cache: bool = False
) -> Lowered:
    """Export, quantize (int8), lower to XNNPACK and serialise ``model``, or take a cached one."""
    et = modules()
    start = time.perf_counter()
    with native_quiet():
        with runtimes.failing("torch.export could not capture the model"):
            exported = torch.export.export(model, (example,))
        key = program_key(exported, tuple(example.shape), quantize)
        if (known := _LOWERED.get(key)) is not None:
            return replace(known, seconds=None, cached_s=known.seconds or known.cached_s)
        lowered = read_program(key) if cache else None
        if lowered is None:
            if quantize == "int8":
                exported = pt2e_int8(exported, example)
            with runtimes.failing("lowering to XNNPACK failed"):
                edge = et.lower(exported, partitioner=[et.partitioner()])
                delegation, partitions = delegation_of(edge.exported_program().graph_module)
                program = edge.to_executorch()
            plan = program.executorch_program.execution_plan[0]
            ops = tuple(f"{o.name}.{o.overload}" if o.overload else o.name for o in plan.operators)
            seconds = time.perf_counter() - start
            lowered = Lowered(bytes(program.buffer), delegation, ops, seconds, None, partitions)
            if cache:
                write_program(key, lowered)
    _LOWERED[key] = lowered  # not there: it would have been returned above
    while len(_LOWERED) > KEEP_LOWERED:
        _LOWERED.pop(next(iter(_LOWERED)))
    return lowered


def pt2e_int8(exported: Any, example: torch.Tensor) -> Any:
    """``exported`` quantized for XNNPACK (PT2E on random batches) and exported again."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True)
    with runtimes.failing("int8 quantization (PT2E) failed"):
        prepared = prepare_pt2e(exported.module(), XNNPACKQuantizer().set_global(config))
        with torch.no_grad():
            for batch in runtimes.random_batches(example.shape):
                prepared(batch)
        return torch.export.export(convert_pt2e(prepared), (example,))


def program_key(exported: Any, input_shape: tuple[int, ...], quantize: str) -> str:
    """A hex digest of what decides the program lowered from ``exported``."""
    digest = hashlib.sha256()
    code = exported.graph_module.code
    for part in (torch.__version__, version("executorch"), quantize, repr(input_shape), code):
        digest.update(part.encode() + b"\0")
    tensors = {**exported.state_dict, **getattr(exported, "constants", {})}
    for name, tensor in sorted(tensors.items()):  # names are unique: tensors never compared
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode() + b"\0")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def read_program(key: str) -> Lowered | None:
    """The program stored under ``key`` (lowered earlier), or None (missing, or damaged)."""
    pte_path, meta_path = (cache_dir() / "executorch" / f"{key}.{x}" for x in ("pte", "json"))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        pte, found = pte_path.read_bytes(), meta["delegation"]
        if meta["pte"] != len(pte):
            return None
        fallbacks = tuple(Fallback(**f) for f in found.pop("fallbacks"))
        delegation = Delegation(**found, fallbacks=fallbacks)
        partitions = tuple({k: tuple(v) for k, v in p.items()} for p in meta["partitions"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    return Lowered(pte, delegation, tuple(meta["operators"]), None, meta["seconds"], partitions)


def write_program(key: str, lowered: Lowered) -> None:
    """Store a program (its description last, so that a half-written one is never read)."""
    pte_path, meta_path = (cache_dir() / "executorch" / f"{key}.{x}" for x in ("pte", "json"))
    with contextlib.suppress(OSError, MbprofError):  # no cache here: the next run lowers again
        pte_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(pte_path, lowered.pte)
        meta = {**asdict(lowered), "pte": len(lowered.pte)}  # the size of the .pte beside it
        write_atomic(meta_path, json.dumps(meta, indent=1))


class Loaded:
    """A program loaded on a thread pool of ``threads`` threads: call it with the input."""

    def __init__(self, lowered: Lowered, threads: int, etdump: bool = False) -> None:
        et = modules()
        registry = et.runtime.get().operator_registry.operator_names
        missing = [op for op in lowered.operators if op not in registry]  # no kernel in this build
        if missing:
            paths = [f.path for f in lowered.delegation.fallbacks if f.path]
            where = f" (outside XNNPACK: {', '.join(dict.fromkeys(paths))})" if paths else ""
            raise RuntimeError(
                f"ExecuTorch has no kernel for {', '.join(missing)} in this build{where}: the "
                "model lowers but cannot run; replace that operation"
            )
        with native_quiet():
            if et.portable._threadpool_get_thread_count() != threads:
                gc.collect()  # no method loaded on the old pool may run after the resize
                et.portable._unsafe_reset_threadpool(threads)
            self.program = et.runtime.get().load_program(
                lowered.pte, enable_etdump=etdump, debug_buffer_size=0
            )
            self.method = self.program.load_method("forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x])[0]


def prepare(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """The program lowered, loaded, checked against the model, with its fp32 reference in int8."""
    model, settings, notes = form.model, form.settings, form.notes
    form.example = example = form.example.contiguous()
    int8 = settings.quantize == "int8"
    lowered = lower(model, example, settings.quantize, cache=settings.cache_programs)
    program = Loaded(lowered, settings.threads)
    notes.append(lowered.delegation.note())
    notes.append(
        "compile_s: torch.export + "
        + ("int8 quantization (PT2E) + " if int8 else "")
        + "lowering to XNNPACK + serialisation to a .pte"
    )
    if lowered.seconds is None:
        notes.append(
            f"the program came from mbprof's cache (lowered earlier in {lowered.cached_s:.1f} "
            "s), so compile_s is empty"
        )
    figures: dict[str, Any] = {
        "deployed_bytes": len(lowered.pte),
        "delegated_ops": lowered.delegation.delegated_ops,
        "portable_ops": len(lowered.delegation.fallbacks),
    }
    inputs, reference = [example], program
    if int8:
        notes.append(
            "int8: PT2E with the XNNPACK quantizer (weights int8 symmetric per channel, "
            f"activations int8 per tensor, calibrated on {runtimes.CALIBRATION_BATCHES} random "
            "batches of the input shape)"
        )
        fp32 = lower(model, example, "none", cache=settings.cache_programs)
        reference = Loaded(fp32, settings.threads)
        figures["fp32_deployed_bytes"] = len(fp32.pte)
    return runtimes.exported(
        form,
        "ExecuTorch",
        reference,
        program if int8 else None,
        run=lambda: program.method.execute(inputs),
        compile_s=lowered.seconds,
        reference=(lambda: reference.method.execute(inputs)) if int8 else None,
        figures=figures,
        threads=modules().portable._threadpool_get_thread_count,  # XNNPACK's pool
        layers=lambda n: layer_profile(model, example, settings, n, lowered),
        how="ExecuTorch's ETDump, {passes} runs, XNNPACK's own time for each of its operators "
        "(1 us resolution: layers under 20 us leave the compute ceiling as it is), matched to "
        "the graph's nodes in order",
    )


LAYOUT, OVERHEAD = "(layout)", "(delegate overhead)"


def _events(pte_program: Any, folder: str) -> list[Any]:
    """The events of the Execute block of a profiled program's ETDump."""
    etdump = os.path.join(folder, "program.etdp")
    with native_quiet():  # a fresh folder: no file there unless the program wrote it
        if pte_program._program.has_etdump():
            pte_program.write_etdump_result_to_file(etdump, os.path.join(folder, "debug.bin"))
    if not os.path.exists(etdump):
        raise MbprofError(
            "layers: this ExecuTorch build has no event tracer (ETDump), so it cannot time "
            "operators; install the executorch wheel from PyPI, which has it",
            field="layers",
        )
    from executorch.devtools import Inspector

    with native_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one "Unsupported kwarg" warning per graph node
        inspector = Inspector(etdump_path=etdump)
    return next((list(b.events) for b in inspector.event_blocks if b.name == "Execute"), [])


def _last(event: Any, runs: int) -> tuple[float, ...]:
    """The event's time in each of the last ``runs`` runs (the warm-up runs come first)."""
    return () if event.perf_data is None else tuple(float(t) for t in event.perf_data.raw[-runs:])


def layer_profile(
    model: nn.Module,
    example: torch.Tensor,
    settings: LatencySettings,
    runs: int,
    lowered: Lowered,
    warmup: int = 3,
) -> RawProfile:
    """Each operator's time in each profiled run of ``lowered`` on ``example``, per module path."""
    program = Loaded(lowered, settings.threads or 1, etdump=True)
    for _ in range(warmup + runs):
        program(example)
    with tempfile.TemporaryDirectory(prefix="mbprof-etdump-") as folder:
        events = _events(program.program, folder)
    rows = Rows(model, example, runs)

    def add(path: str, kind: str, times_ms: tuple[float, ...]) -> None:
        if not times_ms:
            return
        row = rows.at(path, path, kind, mapped=path != "(unmapped)")
        if path in rows.owners and settings.quantize == "none":
            row.bytes_moved = rows.owners[path].bytes_moved
        for k, t in enumerate(times_ms[: len(row.times_us)]):
            row.times_us[k] += t * 1e3
        row.ops += 1

    partitions = iter(lowered.partitions)
    fallbacks = list(lowered.delegation.fallbacks)
    pending: list[Any] = []
    walls: tuple[float, ...] = (0.0,)
    for event in events:
        if event.is_delegated_op:
            pending.append(event)
        elif event.name == "DELEGATE_CALL":
            kinds = {kind: list(paths) for kind, paths in next(partitions, {}).items()}
            for op in pending:
                kind = next((v for k, v in XNNPACK_KINDS.items() if op.name.startswith(k)), None)
                paths = kinds.get(kind or "", [])
                path = LAYOUT if kind is None else paths.pop(0) if paths else "(unmapped)"
                add(path, kind or "layout", _last(op, runs))
            # the call less its operators, run by run (none when the runs do not line up)
            total, parts = _last(event, runs), [_last(op, runs) for op in pending]
            if total and all(len(p) == len(total) for p in parts):
                overhead = tuple(t - sum(p[k] for p in parts) for k, t in enumerate(total))
                add(OVERHEAD, "overhead", overhead)
            pending = []
        elif event.name.startswith("native_call_"):
            base = event.name.removeprefix("native_call_").split(".")[0]
            match = next((f for f in fallbacks if f.op.split(".")[1] == base), None)
            if match is not None:
                fallbacks.remove(match)
            add(match.path if match is not None else "(unmapped)", base, _last(event, runs))
        elif event.name == "Method::execute":
            walls = _last(event, runs) or (0.0,)
    # XNNPACK's operator times come in whole microseconds: a layer under 20 of them is timed
    # too coarsely (5% and worse) for its rate to raise the compute ceiling.
    return RawProfile(rows=list(rows.values()), walls_ms=list(walls), resolution_ms=0.02)
