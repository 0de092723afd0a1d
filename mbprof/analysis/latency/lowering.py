"""ExecuTorch before anything runs: export, int8 (PT2E), lowering to XNNPACK, the program cache."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from mbprof.analysis.collector import native_quiet
from mbprof.analysis.latency.runtimes import (
    CALIBRATION_BATCHES,
    CALIBRATION_SEED,
    random_batches,
    root_cause,
)
from mbprof.core.errors import MbprofError
from mbprof.core.files import cache_dir, write_atomic

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
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
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
        groups: dict[str, list[str]] = {}
        for fallback in self.fallbacks:
            groups.setdefault(fallback.op, []).append(fallback.path or "(model)")
        listed = []
        for op, paths in groups.items():
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


# kind -> (the graph nodes XNNPACK runs as one operator each, the names its operators of the
# kind start with). Its other nodes (batch norm, activations) are fused into the convolution
# before them; its operators not named here are layout.
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
# Per XNNPACK partition, in execution order: the kind of each compute node it holds
# ("conv", "add", ...) -> the module paths of those nodes, in graph order (the per-layer
# profile matches XNNPACK's operators to them: ``executorch.layer_profile``).
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


# Programs lowered in this process, by program key (newest last): a second preparation of
# the same graph and weights (``bench --layers`` after the timing, an int8 run's fp32
# reference beside the fp32 row of a sweep) does not lower again.
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
            kind = ATEN_KINDS.get(_name(n)) if n.op == "call_function" else None
            if kind:
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
        try:
            exported = torch.export.export(model, (example,))
        except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
            why = root_cause(exc)
            raise RuntimeError(f"torch.export could not capture the model: {why}") from exc
        key = program_key(exported, tuple(example.shape), quantize)
        if key in _LOWERED:
            known = _LOWERED[key]
            return replace(known, seconds=None, cached_s=known.seconds or known.cached_s)
        lowered = read_program(key) if cache else None
        if lowered is None:
            if quantize == "int8":
                exported = pt2e_int8(exported, example)
            try:
                edge = et.lower(exported, partitioner=[et.partitioner()])
                delegation, partitions = delegation_of(edge.exported_program().graph_module)
                program = edge.to_executorch()
            except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
                raise RuntimeError(f"lowering to XNNPACK failed: {root_cause(exc)}") from exc
            plan = program.executorch_program.execution_plan[0]
            ops = tuple(f"{o.name}.{o.overload}" if o.overload else o.name for o in plan.operators)
            seconds = time.perf_counter() - start
            lowered = Lowered(bytes(program.buffer), delegation, ops, seconds, None, partitions)
            if cache:
                write_program(key, lowered)
    _LOWERED.pop(key, None)
    _LOWERED[key] = lowered
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
    try:
        prepared = prepare_pt2e(exported.module(), XNNPACKQuantizer().set_global(config))
        with torch.no_grad():
            for batch in random_batches(example.shape, CALIBRATION_BATCHES, CALIBRATION_SEED):
                prepared(batch)
        return torch.export.export(convert_pt2e(prepared), (example,))
    except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
        raise RuntimeError(f"int8 quantization (PT2E) failed: {root_cause(exc)}") from exc


def program_key(exported: Any, input_shape: tuple[int, ...], quantize: str) -> str:
    """A hex digest of what decides the program lowered from ``exported``."""
    digest = hashlib.sha256()
    code = exported.graph_module.code
    for part in (torch.__version__, version("executorch"), quantize, repr(input_shape), code):
        digest.update(part.encode() + b"\0")
    tensors = {**exported.state_dict, **getattr(exported, "constants", {})}
    for name in sorted(tensors):
        tensor = tensors[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode() + b"\0")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "executorch"
    return folder / f"{key}.pte", folder / f"{key}.json"


def read_program(key: str) -> Lowered | None:
    """The program stored under ``key`` (lowered earlier), or None (missing, or damaged)."""
    pte_path, meta_path = _paths(key)
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
    pte_path, meta_path = _paths(key)
    try:
        pte_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(pte_path, lowered.pte)
        meta = {**asdict(lowered), "pte": len(lowered.pte)}  # the size of the .pte beside it
        write_atomic(meta_path, json.dumps(meta, indent=1))
    except (OSError, MbprofError):
        pass  # no cache here: the next run lowers again
