"""MAdds and parameters, per layer and in total, with fvcore (or from the meta-device trace),
and the parameters the inference forward pass reads: ``params_used``."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from mbprof.analysis.collector import collector_paused, loggers_at_error, removed_after
from mbprof.analysis.flops import multiply_adds
from mbprof.analysis.memory.graph import Graph, Node
from mbprof.analysis.memory.ops import BATCH_NORM
from mbprof.analysis.memory.trace import meta_state, tensors, trace
from mbprof.core.errors import MbprofError, first_line
from mbprof.core.records import CountReport, LayerRow

FVCORE_LOGGER = "fvcore.nn.jit_analysis"
# fvcore handle names whose counts are multiply-accumulates of conv / FC layers.
MADD_OPS = frozenset(
    {"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum", "scaled_dot_product_attention"}
)


def _sdpa_madds(inputs: list, outputs: list) -> int:
    """Fused attention's MAdds: q @ k^T and attention @ v (fvcore has no handle for it)."""
    query, key, value = (inputs[i].type().sizes() for i in range(3))
    return math.prod(query[:-2]) * query[-2] * key[-2] * (query[-1] + value[-1])


def _einsum_madds(inputs: list, outputs: list) -> int | float:
    """fvcore's einsum rule without its rounding to four significant digits."""
    equation = inputs[0].toIValue().replace(" ", "")
    shapes = [v.type().sizes() for v in inputs[1].node().inputs()]
    terms, _, result = equation.partition("->")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms.split(","), shapes, strict=False):
        sizes.update(zip(term, shape, strict=False))
    if len(shapes) != 2 or "." in equation or not result or set(sizes) <= set(result):
        from fvcore.nn.jit_handles import einsum_flop_jit

        return einsum_flop_jit(inputs, outputs)
    return math.prod(sizes.values())


def _layer_geometry(module: nn.Module) -> dict:
    if isinstance(module, nn.modules.conv._ConvNd):
        return {
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "kernel": tuple(module.kernel_size[-2:]),
            "stride": tuple(module.stride[-2:]),
            "groups": module.groups,
        }
    if isinstance(module, nn.Linear):
        return {"in_channels": module.in_features, "out_channels": module.out_features}
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
        channels = getattr(module, "num_features", None) or getattr(module, "num_channels", None)
        return {"in_channels": channels, "out_channels": channels}
    return {}


def _output_sizes(model: nn.Module, sizes: dict[str, tuple[int, int]]) -> AbstractContextManager:
    """Each leaf module's output HxW into ``sizes``, recorded while fvcore traces."""
    leaves = {m: name for name, m in model.named_modules() if next(m.children(), None) is None}

    def record(module: nn.Module, _inputs: object, output: object) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:  # dim(): not traced
            return
        # read with the tracer paused: under it the shape joins fvcore's graph (slower)
        tracing = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            sizes[leaves[module]] = (int(output.shape[-2]), int(output.shape[-1]))
        finally:
            torch._C._set_tracing_state(tracing)

    return removed_after([module.register_forward_hook(record) for module in leaves])


def _dispatch_cost(graph: Graph, node: Node, instance: bool) -> tuple[str, int] | None:
    """(fvcore's op name, its count) by fvcore's default handle for ``node``'s aten op, or None."""
    name, args = node.name, node.args
    elements = graph.values[node.inputs[0]].numel if node.inputs else 0  # of the first input
    if node.conv is not None or name in ("addmm", "mm", "bmm"):
        return "conv" if node.conv is not None else name, multiply_adds(graph, node)[0] // 2
    if name in BATCH_NORM:  # fvcore: 2 (1 without affine) per element in eval, else 5 (4)
        affine = args[1] is ...
        if instance or next((a for a in args if isinstance(a, bool)), False):
            return "instance_norm" if instance else "batch_norm", (4 + affine) * elements
        return "batch_norm", (1 + affine) * elements
    if name in ("native_group_norm", "native_layer_norm"):  # fvcore's group_norm, layer_norm
        affine = args[1 if name == "native_group_norm" else 2] is ...
        return name.removeprefix("native_"), (4 + affine) * elements
    if name == "_adaptive_avg_pool2d" or (name == "mean" and args[1:] == ([-1, -2], True)):
        return "adaptive_avg_pool2d", elements
    scale = {"upsample_nearest2d": 1, "upsample_bilinear2d": 4, "grid_sampler_2d": 4}.get(name)
    if scale:
        op = "grid_sampler" if name == "grid_sampler_2d" else name
        return op, scale * graph.values[node.outputs[0]].numel
    return None


def _attention_products(graph: Graph) -> set[int]:
    """The nodes of the two matrix products of each fused attention (bmm, _safe_softmax, bmm)."""
    found: set[int] = set()
    last, pending = None, False
    for index, node in enumerate(graph.nodes):
        if node.name == "_safe_softmax" and last is not None:
            found.add(last)
            last, pending = None, True
        elif node.name in ("bmm", "mm"):
            if pending:
                found.add(index)
            last, pending = (None if pending else index), False
    return found


def _dispatch(model: nn.Module, graph: Graph) -> tuple[dict, Counter[str]]:
    """fvcore's ``by_module_and_operator`` and its unsupported ops, from ``graph``."""
    # the trace names a shared module by its last name, fvcore by its first
    first: dict[int, str] = {}
    named = {n: first.setdefault(id(m), n) for n, m in model.named_modules(remove_duplicate=False)}
    norm = nn.modules.instancenorm._InstanceNorm
    instance = {name for name, module in model.named_modules() if isinstance(module, norm)}
    by_module: dict[str, Counter] = {}
    uncounted: Counter[str] = Counter()
    attention = _attention_products(graph)
    for index, node in enumerate(graph.nodes):
        path = named.get(node.module, node.module)
        cost = _dispatch_cost(graph, node, path in instance)
        if index in attention:
            cost = "scaled_dot_product_attention", cost[1]
        if cost is None:
            if node.name != "empty":  # batch norm's decomposition allocates: not the model's op
                uncounted[f"aten::{node.name}"] += 1
            continue
        parts = path.split(".") if path else []
        for depth in range(len(parts) + 1):
            by_module.setdefault(".".join(parts[:depth]), Counter())[cost[0]] += cost[1]
    return by_module, uncounted


# Tensor methods and functions that copy a tensor's value out to Python.
VALUE_READS = frozenset(
    {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "__complex__", "equal"}
)
# ... and those that read only its metadata (besides every property getter, ``__get__``:
# shape, dtype, device, ``.T`` - a view, whose later use is seen by its storage).
METADATA = frozenset(
    (
        "__get__ size dim ndimension numel nelement stride storage_offset element_size is_contiguous "
        "is_floating_point is_complex get_device data_ptr untyped_storage __len__"
    ).split()
)
NAMED_AT_MOST = 4


def _storage(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage()._cdata
    # NotImplementedError (a subclass of RuntimeError) for a tensor without storage (sparse,
    # nested); RuntimeError for one whose storage cannot be read here
    except RuntimeError:
        return 0


class _Reads(TorchFunctionMode):
    """Inside it: the ``id()`` of each parameter of ``model`` (or of its stand-in in ``state``)
    an op reads, into ``read``; ``values_read``: whether a tensor's value went to Python."""

    def __init__(self, model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.owners: dict[int, list[int]] = {}  # storage -> ids of the parameters there
        for name, param in model.named_parameters():
            tensor = param if state is None else state[name]
            self.owners.setdefault(_storage(tensor), []).append(id(param))
        self.read: set[int] = set()
        self.values_read = False

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        self.values_read |= name in VALUE_READS
        if name not in METADATA:
            for tensor in tensors((args, kwargs)):
                self.read.update(self.owners.get(_storage(tensor), ()))
        return func(*args, **kwargs)


def read_parameters(model: nn.Module, input_shape: Sequence[int]) -> _Reads:
    """The parameters one eval-mode forward pass of ``model`` on ``input_shape`` reads."""
    state = meta_state(model)
    try:
        example = torch.zeros(tuple(input_shape), device="meta")
        with torch.no_grad(), torch.device("meta"), _Reads(model, state) as seen:
            torch.func.functional_call(model, state, (example,), strict=False)
        return seen
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - it reads tensor values: once for real
        pass
    with torch.inference_mode(), _Reads(model) as seen:
        model(torch.zeros(tuple(input_shape)))
    return seen


def unused_modules(model: nn.Module, read: Collection[int]) -> list[str]:
    """The outermost modules that hold parameters none of which was read."""
    names: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(f"{outer}.") for outer in names):
            continue
        held = list(module.parameters())
        if held and not any(id(p) in read for p in held):
            names.append(name)
    return names


@collector_paused()
def count(
    model: nn.Module,
    input_shape: tuple[int, ...],
    graph: Graph | None = None,
    engine: str = "fvcore",
) -> CountReport:
    """Count MAdds and params of ``model`` for one input of ``input_shape`` (N, C, H, W)."""
    model = model.eval()
    notes: tuple[str, ...] = ()
    failure = None
    if engine == "fvcore":
        try:
            return _fvcore(model, input_shape, graph)
        except (MbprofError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - no tracer, or one that refuses the model
            failure, why = exc, f"{type(exc).__name__}: {first_line(exc)[:200]}"
            notes = (
                f"counted by the dispatch engine: fvcore's tracer (torch.jit.trace) cannot "
                f"trace {type(model).__name__} ({why})",
            )
    if graph is None:
        try:
            graph = trace(model, (1, *input_shape[1:]))
        except MbprofError:
            if failure is None:
                raise
            raise failure from None  # neither engine can: fvcore's reason, as before
    batch = graph.values[graph.input_value].shape[0]
    report = _report(model, batch, *_dispatch(model, graph), *_from_graph(model, graph))
    return replace(report, engine="dispatch", notes=notes + report.notes)


def _from_graph(model: nn.Module, graph: Graph) -> tuple[dict, set[int]]:
    leaves = {name for name, m in model.named_modules() if next(m.children(), None) is None}
    sizes: dict[str, tuple[int, int]] = {}
    for node in graph.nodes:  # a leaf's last op: its output
        if node.module in leaves and node.outputs:
            shape = graph.values[node.outputs[0]].shape
            sizes[node.module] = (shape[-2], shape[-1]) if len(shape) == 4 else None
    read = {id(p) for name, p in model.named_parameters() if name in graph.params_read}
    return {name: hw for name, hw in sizes.items() if hw}, read


def _fvcore(model: nn.Module, input_shape: tuple[int, ...], graph: Graph | None) -> CountReport:
    with warnings.catch_warnings():  # fvcore scripts a loss function at import: not our concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.14 deprecates jit.script
        # imported here: without torch.jit's tracer the import fails (the dispatch engine counts)
        from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, torch.zeros(input_shape)).set_op_handle(
        "aten::scaled_dot_product_attention", _sdpa_madds, "aten::einsum", _einsum_madds
    )
    # Hear about every op without an estimate, not only the ones fvcore thinks notable.
    analysis._ignored_ops = set()
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")

    quiet = loggers_at_error([FVCORE_LOGGER])
    if graph is not None:
        with quiet:
            by_module = analysis.by_module_and_operator()  # fvcore traces the model here
        sizes, read, values_read = *_from_graph(model, graph), False
    else:
        sizes: dict[str, tuple[int, int]] = {}
        with _output_sizes(model, sizes), quiet, _Reads(model) as seen:
            by_module = analysis.by_module_and_operator()  # the sizes and reads in the same pass
        if seen.values_read:
            # Under jit's tracer a shape is a tensor: ``x.shape[-2] == 224`` looks like a value
            # read. Only a pass without the tracer tells (on the meta device when it runs there).
            seen = read_parameters(model, (1, *input_shape[1:]))
        read, values_read = seen.read, seen.values_read
    unsupported = analysis.unsupported_ops()
    uncounted = Counter({op: n for op, n in unsupported.items() if op.startswith("aten::")})
    return _report(model, input_shape[0], by_module, uncounted, sizes, read, values_read)


def _report(
    model: nn.Module,
    batch: int,
    by_module: dict,
    uncounted: Counter[str],
    sizes: dict[str, tuple[int, int]],
    read: set[int],
    values_read: bool = False,
) -> CountReport:
    """The rows and totals from fvcore's counts per module (``by_module``)."""
    layers: list[LayerRow] = []
    other_by_op: Counter[str] = Counter()
    for name, module in model.named_modules():
        held = [p for p in module._parameters.values() if p is not None]  # parameters(False)
        own = Counter(by_module.get(name) or {})
        if not (own or held):
            continue  # nothing counted in it or below, no parameters: no row
        for child_name in module._modules:
            own.subtract(by_module.get(f"{name}.{child_name}" if name else child_name, {}))
        # int(): fvcore's einsum handle counts in floats (the equations ours leaves to it)
        madds = int(sum(n for op, n in own.items() if op in MADD_OPS)) // batch
        other = {op: int(n) // batch for op, n in own.items() if op not in MADD_OPS and n}
        params = sum(p.numel() for p in held)
        if not (madds or other or params):
            continue  # activations, dropout, containers: no cost of their own
        other_by_op.update(other)
        layers.append(
            LayerRow(
                path=name or "(model)",
                type=type(module).__name__,
                madds=madds,
                other_flops=sum(other.values()),
                params=params,
                out_hw=sizes.get(name),
                **_layer_geometry(module),
                params_used=sum(p.numel() for p in held if id(p) in read),
            )
        )
    total = sum(p.numel() for p in model.parameters())
    used = sum(p.numel() for p in model.parameters() if id(p) in read)  # tied ones once
    madds = sum(row.madds for row in layers)
    attention = int(by_module.get("", {}).get("scaled_dot_product_attention", 0)) // batch
    notes = []
    if used != total:
        unused = unused_modules(model, read)
        more = len(unused) - NAMED_AT_MOST
        named = ", ".join(unused[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")
        notes.append(
            f"params_used {used:,} of {total:,}: the inference forward pass never "
            f"reads {total - used:,} parameters" + (f" (in {named})" if named else "")
        )
    if values_read:
        notes.append(
            "the forward pass reads tensor values into Python (.item(), a tensor as an if "
            "condition): the counts are for the path an all-zeros input takes"
        )
    if attention:
        notes.append(
            f"fused attention (scaled_dot_product_attention) is {attention:,} of the {madds:,} "
            f"MAdds: fvcore's own handles, and timm's published GMACs, leave it out "
            f"({madds - attention:,})"
        )
    return CountReport(
        madds=madds,
        params=total,
        other_flops=sum(other_by_op.values()),
        layers=tuple(layers),
        other_flops_by_op=dict(other_by_op),
        uncounted_ops=dict(uncounted),
        params_used=used,
        notes=tuple(notes),
        attention_madds=attention,
    )
