"""Activation memory of one forward pass, from the traced graph.

How the graph is traced: the model runs once on the meta device (shapes only, no data, no
arithmetic) under a TorchDispatchMode that records every aten op with its input and output
tensors, the storage each tensor lives in and the module that ran it. Views and in-place ops
share their input's storage, so they add nothing; a storage is one buffer, counted once.
A model that cannot run on the meta device (data-dependent control flow, ``.item()``,
CPU-only ops) cannot be analysed: ``MbprofError`` says so.

What a byte counts: every floating-point activation element costs the chosen dtype's size
(fp16 and bf16 2 bytes, fp32 4, int8 1), whatever the model computes in; integer tensors
(max-pool indices) keep their own size. Parameters and buffers are not activations. The input
image is not counted anywhere (it is the caller's buffer; ``input_bytes`` gives its size), so
the stem's input is left out of its op. KB = 1000 bytes (``mbprof.units``).

Liveness: a buffer is alive from the op that creates it to its last use by a later op (the
model's outputs to the end). At each op, live bytes = its inputs + its outputs + tensors held
for later (residual shortcuts, concatenation branches) + any internal buffer; the peak is the
largest over all ops, and the op where it happens is reported.

Three modes, one trace:
- eager: op by op as eager PyTorch allocates (batch norm writes a new tensor), each buffer
  freed after its last use. The real-run check (``memory_measure``) compares against this.
- materialized (the headline, ``peak``): as a deployed graph runs, conv + batch norm +
  activation as one layer: an element-wise op with one activation input (batch norm,
  ReLU6, hard-swish, ...) writes over that input when nothing uses it afterwards. Binary ops
  (residual add, SE gating, concatenation) write a new tensor. Side outputs nobody reads
  (max-pool indices, batch-norm statistics) are not counted.
- memory-efficient (``peak_efficient``), the MobileNetV2 paper's section 5.1: a chunkable
  block (found by its structure, not its class name; see ``find_blocks``) runs as one op that
  computes its expanded tensor in T chunks of channels and accumulates the projection, so it
  needs |input| + |output| + one chunk, ceil(C / T) channels of the largest inner tensor.
  ``chunks=None`` means one channel per chunk (T = C, the paper's limit, which its Table 3
  assumes). Since the stem is a widening conv, a first block without an expansion conv
  (MobileNetV2's t = 1 block) fuses with the stem, so the stem's 32 x 112 x 112 output is
  never whole.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mbprof.errors import MbprofError
from mbprof.parsing import MEM_DTYPE_BYTES, parse_chunks, parse_mem_dtype
from mbprof.records import ChunkedBlock, LivePoint, MemoryReport, ResolutionMemory

ACT, PARAM, INPUT, CONST = "act", "param", "input", "const"

# Element-wise ops that torch does not tag as pointwise.
_ELEMENTWISE_EXTRA = frozenset(
    {"hardswish", "hardswish_", "gelu_", "hardshrink", "softshrink", "prelu", "_prelu_kernel"}
)
_BATCH_NORM = frozenset(
    {
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "batch_norm",
        "cudnn_batch_norm",
        "miopen_batch_norm",
        "_batch_norm_impl_index",
    }
)
_CONV = frozenset({"convolution", "_convolution", "conv2d", "conv1d", "conv3d"})
_PAD = frozenset({"constant_pad_nd", "reflection_pad2d", "replication_pad2d", "pad"})
_ALIAS = frozenset(
    {"view", "_unsafe_view", "reshape", "alias", "detach", "expand", "_reshape_alias", "clone"}
)
# Reductions that, over the spatial dims, leave one value per channel (global pooling).
_REDUCE = frozenset(
    {
        "mean",
        "sum",
        "amax",
        "amin",
        "max",
        "avg_pool2d",
        "_adaptive_avg_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "max_pool2d_with_indices",
        "max_pool2d",
    }
)


# --------------------------------------------------------------------------- the trace


@dataclass
class Buffer:
    """One storage: what an allocator would hand out."""

    index: int
    nbytes: int  # as traced
    itemsize: int
    floating: bool
    kind: str  # ACT, PARAM, INPUT or CONST
    created_at: int | None = None  # node that created it (ACT only)


@dataclass
class Value:
    """One tensor an op produced (a new version after an in-place op, a view of a buffer)."""

    index: int
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

    @property
    def depthwise(self) -> bool:
        return (
            not self.transposed
            and self.groups > 1
            and self.groups == self.in_channels == self.out_channels
        )

    @property
    def dense(self) -> bool:
        return not self.transposed and self.groups == 1


@dataclass
class Node:
    index: int
    name: str  # aten op name without namespace and overload, e.g. "convolution"
    module: str  # the innermost module running when the op was dispatched ("" = top level)
    inputs: tuple[int, ...]  # value ids of the tensor arguments, in order
    outputs: tuple[int, ...]
    pointwise: bool
    conv: Conv | None = None

    @property
    def label(self) -> str:
        return f"{self.module or '(model)'} {self.name}"

    @property
    def batch_norm(self) -> bool:
        return self.name in _BATCH_NORM

    @property
    def elementwise(self) -> bool:
        return self.pointwise or self.batch_norm or self.name in _ELEMENTWISE_EXTRA


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    buffers: list[Buffer] = field(default_factory=list)
    outputs: tuple[int, ...] = ()  # the model's output values
    input_value: int | None = None
    consumers: list[list[int]] = field(default_factory=list)  # value -> node indices

    def kind(self, value: int) -> str:
        return self.buffers[self.values[value].buffer].kind

    def act_inputs(self, node: Node) -> list[int]:
        """Activation inputs of ``node`` (the image included), scalars left out."""
        return [
            v
            for v in dict.fromkeys(node.inputs)
            if self.kind(v) in (ACT, INPUT) and self.values[v].numel > 1
        ]


class _Builder:
    def __init__(self, param_storages: set[int], input_tensor: torch.Tensor) -> None:
        self.graph = Graph()
        self.params = param_storages
        self.input_storage = _storage_key(input_tensor)
        self.current: dict[int, int] = {}  # id(tensor object) -> its current value
        self.storage_buffer: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # every tensor seen stays alive: ids stay unique
        self.modules: list[str] = []
        self.graph.input_value = self.value_of(input_tensor)

    def _new_buffer(self, tensor: torch.Tensor, kind: str, created_at: int | None) -> int:
        storage = tensor.untyped_storage()
        buffer = Buffer(
            index=len(self.graph.buffers),
            nbytes=storage.nbytes(),
            itemsize=tensor.element_size(),
            floating=tensor.is_floating_point() or tensor.is_complex(),
            kind=kind,
            created_at=created_at,
        )
        self.graph.buffers.append(buffer)
        self.storage_buffer[_storage_key(tensor)] = buffer.index
        return buffer.index

    def _new_value(self, tensor: torch.Tensor, buffer: int) -> int:
        value = Value(
            index=len(self.graph.values),
            buffer=buffer,
            shape=tuple(int(d) for d in tensor.shape),
            contiguous=tensor.is_contiguous(),
            nbytes=tensor.numel() * tensor.element_size(),
        )
        self.graph.values.append(value)
        self.current[id(tensor)] = value.index
        self.keep.append(tensor)
        return value.index

    def value_of(self, tensor: torch.Tensor) -> int:
        """The value a tensor argument holds; tensors made outside the trace become leaves."""
        known = self.current.get(id(tensor))
        if known is not None:
            return known
        key = _storage_key(tensor)
        buffer = self.storage_buffer.get(key)
        if buffer is None:
            if key in self.params:
                kind = PARAM
            elif key == self.input_storage:
                kind = INPUT
            else:
                kind = CONST
            buffer = self._new_buffer(tensor, kind, None)
        return self._new_value(tensor, buffer)

    def record(self, func: torch._ops.OpOverload, args: tuple, kwargs: dict, out: object) -> None:
        index = len(self.graph.nodes)
        inputs = tuple(self.value_of(t) for t in _tensors((args, kwargs)))
        outputs = []
        for tensor in _tensors(out):
            buffer = self.storage_buffer.get(_storage_key(tensor))
            if buffer is None:
                buffer = self._new_buffer(tensor, ACT, index)
            outputs.append(self._new_value(tensor, buffer))
        name = func._schema.name.split("::")[-1]
        self.graph.nodes.append(
            Node(
                index=index,
                name=name,
                module=self.modules[-1] if self.modules else "",
                inputs=inputs,
                outputs=tuple(outputs),
                pointwise=torch.Tag.pointwise in func.tags,
                conv=_conv_info(name, args, kwargs),
            )
        )


def _tensors(obj: object) -> list[torch.Tensor]:
    """The tensors in an op's arguments or results (tuples, lists, dicts), in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _conv_info(name: str, args: tuple, kwargs: dict) -> Conv | None:
    if name not in _CONV or len(args) < 2:
        return None
    weight = args[1]
    if name in ("convolution", "_convolution"):
        transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
        groups = int(args[8]) if len(args) > 8 else int(kwargs.get("groups", 1))
    else:
        transposed = False
        groups = int(args[6]) if len(args) > 6 else int(kwargs.get("groups", 1))
    if transposed:
        in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
    else:
        in_channels, out_channels = weight.shape[1] * groups, weight.shape[0]
    return Conv(
        in_channels=int(in_channels),
        out_channels=int(out_channels),
        kernel=tuple(int(k) for k in weight.shape[2:]),
        groups=groups,
        transposed=transposed,
    )


class _Recorder(TorchDispatchMode):
    def __init__(self, builder: _Builder) -> None:
        super().__init__()
        self.builder = builder

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: do not import torch._dynamo (seconds) for it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = _shortcut(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        self.builder.record(func, args, kwargs, out)
        return out


# Float -> float element-wise ops whose output is shaped and laid out like their input.
_SAME_AS_INPUT = frozenset(
    {
        "relu",
        "relu6",
        "hardtanh",
        "hardswish",
        "hardsigmoid",
        "sigmoid",
        "silu",
        "gelu",
        "elu",
        "leaky_relu",
        "tanh",
        "clamp",
        "clamp_min",
        "clamp_max",
        "mish",
        "softplus",
        "neg",
    }
)
_BINARY_SAME = frozenset({"add", "mul", "sub", "div"})


def _shortcut(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> object | None:
    """The meta output of the commonest ops without their Python meta kernels (batch
    norm's decomposition, the element-wise references), which take most of a trace's time.
    Only cases whose result is certain: same shape, dtype and layout as the input."""
    name = func._schema.name.split("::")[-1]
    first = args[0] if args else None
    if not isinstance(first, torch.Tensor) or not first.is_floating_point():
        return None
    if name in ("addmm", "mm") and not kwargs:
        a, b = args[-2:] if name == "addmm" else args[:2]
        if a.dim() == 2 and b.dim() == 2 and a.dtype == b.dtype == first.dtype:
            return a.new_empty((a.shape[0], b.shape[1]))
        return None
    if name == "_native_batch_norm_legit_no_training" or (
        name == "native_batch_norm" and len(args) > 5 and not args[5]
    ):
        channels = first.shape[1] if first.dim() > 1 else 0
        stats = (channels,) if name == "native_batch_norm" else (0,)
        return (
            torch.empty_like(first),
            first.new_empty(stats),
            first.new_empty(stats),
        )
    if name in ("mean", "sum") and len(args) >= 2 and isinstance(args[1], (list, tuple)):
        dims = {d % first.dim() for d in args[1]} if args[1] else set(range(first.dim()))
        keepdim = bool(args[2]) if len(args) > 2 else bool(kwargs.get("keepdim", False))
        dtype = kwargs.get("dtype") or first.dtype
        shape = [
            1 if i in dims else n for i, n in enumerate(first.shape) if keepdim or i not in dims
        ]
        return first.new_empty(shape, dtype=dtype)
    base = name[:-1] if name.endswith("_") else name
    others = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.Tensor)]
    if base in _SAME_AS_INPUT and not others:
        pass
    elif (
        base in _BINARY_SAME
        and len(others) == 1
        and others[0].shape == first.shape
        and others[0].dtype == first.dtype
        and others[0].stride() == first.stride()
    ):
        pass
    else:
        return None
    if name.endswith("_"):
        return first  # in place: the op returns its input
    if "out" in kwargs:
        return None
    return torch.empty_like(first)


def _model_name(model: nn.Module) -> str:
    return type(model).__name__


def trace(model: nn.Module, input_shape: Sequence[int]) -> Graph:
    """Run ``model`` once on the meta device and record its ops (the model is not changed:
    its parameters are stood in for by meta tensors of the same shapes and dtypes)."""
    state = dict(model.named_parameters())  # tied weights once: functional_call ties them
    state.update(dict(model.named_buffers()))
    meta_state = {name: torch.empty_like(t, device="meta") for name, t in state.items()}
    param_keys = {_storage_key(t) for t in meta_state.values()}
    floating = [t.dtype for t in state.values() if t.is_floating_point()]
    dtype = floating[0] if floating else torch.float32
    example = torch.empty(tuple(input_shape), dtype=dtype, device="meta")
    builder = _Builder(param_keys, example)

    names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}

    def enter(module: nn.Module, _inputs: object) -> None:
        builder.modules.append(names.get(id(module), ""))

    def leave(module: nn.Module, _inputs: object, _output: object) -> None:
        if builder.modules:
            builder.modules.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        with torch.no_grad(), torch.device("meta"), _Recorder(builder):
            output = torch.func.functional_call(model, meta_state, (example,), strict=False)
    except MbprofError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the graph cannot be traced
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise MbprofError(
            f"the memory analysis cannot trace {_model_name(model)}: its forward pass does not "
            f"run on the meta device ({type(exc).__name__}: {first}); it needs a graph without "
            "data-dependent control flow, .item() or CPU-only ops"
        ) from None
    finally:
        for handle in handles:
            handle.remove()

    graph = builder.graph
    graph.outputs = tuple(
        builder.current[id(t)]
        for t in tree_flatten(output)[0]
        if isinstance(t, torch.Tensor) and id(t) in builder.current
    )
    graph.consumers = [[] for _ in graph.values]
    for node in graph.nodes:
        for v in dict.fromkeys(node.inputs):
            graph.consumers[v].append(node.index)
    return graph


# --------------------------------------------------------------------------- the modes


@dataclass(frozen=True)
class Step:
    """One op as the liveness simulation sees it: buffers in and out, internal bytes."""

    node: int  # graph node (for a chunked block: its last node)
    op: str
    module: str
    inputs: frozenset[int]
    outputs: frozenset[int]
    internal: int = 0
    shape: tuple[int, ...] | None = None
    out_shapes: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (buffer, shape) of each output


class _Sizes:
    """Bytes of each buffer in the report's dtype."""

    def __init__(self, graph: Graph, element_bytes: int) -> None:
        self.graph = graph
        self.element_bytes = element_bytes

    def of(self, buffer: int) -> int:
        b = self.graph.buffers[buffer]
        if not b.floating:
            return b.nbytes
        return b.nbytes // b.itemsize * self.element_bytes

    def of_value(self, value: int) -> int:
        v = self.graph.values[value]
        b = self.graph.buffers[v.buffer]
        return v.numel * (self.element_bytes if b.floating else b.itemsize)


def _counted(graph: Graph, buffers: Iterable[int]) -> frozenset[int]:
    return frozenset(b for b in buffers if graph.buffers[b].kind == ACT)


def eager_steps(graph: Graph) -> tuple[list[Step], set[int]]:
    """Every op as dispatched; batch-norm statistics outputs cost nothing (the CPU eval
    kernel returns them empty). Returns the steps and the buffers that count zero bytes."""
    zero: set[int] = set()
    steps = []
    for node in graph.nodes:
        outs = [(graph.values[v].buffer, graph.values[v].shape) for v in node.outputs]
        if node.batch_norm:
            zero.update(b for b, _ in outs[1:] if graph.buffers[b].created_at == node.index)
        steps.append(_step(graph, node, [graph.values[v].buffer for v in node.inputs], outs))
    return steps, zero


def _step(
    graph: Graph,
    node: Node,
    inputs: Iterable[int],
    outputs: Sequence[tuple[int, tuple[int, ...]]],
) -> Step:
    first = graph.values[node.outputs[0]].shape if node.outputs else None
    counted = _counted(graph, (b for b, _ in outputs))
    return Step(
        node=node.index,
        op=node.name,
        module=node.module,
        inputs=_counted(graph, inputs),
        outputs=counted,
        shape=first,
        out_shapes=tuple((b, shape) for b, shape in outputs if b in counted),
    )


def _is_unary(graph: Graph, node: Node) -> int | None:
    """The one activation input of an element-wise op that could be overwritten by its
    output (same shape, whole contiguous buffers), or None."""
    if not node.elementwise or not node.outputs:
        return None
    acts = graph.act_inputs(node)
    if len(acts) != 1 or graph.kind(acts[0]) != ACT:
        return None
    src, out = graph.values[acts[0]], graph.values[node.outputs[0]]
    if src.shape != out.shape or not (src.contiguous and out.contiguous):
        return None
    if src.nbytes != graph.buffers[src.buffer].nbytes:
        return None  # a view of part of a buffer
    return acts[0]


def materialized_buffers(graph: Graph) -> tuple[dict[int, int], set[int]]:
    """Buffer merges of the materialized mode (an element-wise op writes over its input
    when that input is not used again) and the side outputs nobody reads.

    Returns (buffer -> representative buffer, dropped buffers)."""
    parent: dict[int, int] = {}

    def find(b: int) -> int:
        while b in parent:
            b = parent[b]
        return b

    last_use: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            last_use[graph.values[v].buffer] = node.index
    end = len(graph.nodes)
    for v in graph.outputs:
        last_use[graph.values[v].buffer] = end

    dropped: set[int] = set()
    for node in graph.nodes:
        for v in node.outputs[1:]:
            b = graph.values[v].buffer
            if graph.buffers[b].created_at == node.index and b not in last_use:
                dropped.add(b)  # never read: max-pool indices, batch-norm statistics
        src = _is_unary(graph, node)
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


def materialized_steps(graph: Graph, rep: dict[int, int], dropped: set[int]) -> list[Step]:
    steps = []
    for node in graph.nodes:
        ins = [rep[graph.values[v].buffer] for v in node.inputs]
        outs = [
            (rep[graph.values[v].buffer], graph.values[v].shape)
            for v in node.outputs
            if graph.values[v].buffer not in dropped
        ]
        steps.append(_step(graph, node, ins, outs))
    return steps


# --------------------------------------------------------------------------- chunkable blocks


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


def _small(value: Value) -> bool:
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

    def grow(into: set[int], values: Iterable[int]) -> None:
        nonlocal horizon
        for v in values:
            into.add(v)
            horizon = max(horizon, *graph.consumers[v], -1)

    index = start.index + 1
    while index <= horizon:
        node = graph.nodes[index]
        index += 1
        touched = [v for v in node.inputs if v in spatial or v in side]
        if not touched:
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
        if not in_spatial and not outside and all(_small(graph.values[v]) for v in node.outputs):
            grow(side, node.outputs)  # squeeze-excitation branch or after global pooling
            region.append(node.index)
            continue
        if not in_spatial:
            outside_side_consumers.add(node.index)
            continue
        if outside:
            return None  # mixes in an activation from outside (a shortcut, a concat)
        source = graph.values[in_spatial[0]]
        if (
            node.name in _REDUCE
            and len(node_acts) == 1
            and _small(out)
            and out.numel == source.shape[0] * channels
        ):
            grow(side, node.outputs[:1])
            region.append(node.index)
            reduce_nodes.append(node.index)
            continue
        if len(out.shape) != 4 or out.shape[1] != channels:
            return None
        if c is not None:
            if not c.depthwise:
                return None
            has_depthwise = True
        elif node.name in _PAD:
            pass
        elif node.name in _ALIAS:
            if out.shape != source.shape:
                return None
        elif not node.elementwise or out.shape != source.shape:
            return None
        if any(v in side for v in node_acts):
            reentry = True
        grow(spatial, node.outputs[:1])  # batch-norm statistics are not tensors of the block
        region.append(node.index)

    outputs = set(graph.outputs)
    if spatial & outputs:
        return None
    if project is not None:
        if not has_depthwise or outside_side_consumers or side & outputs:
            return None
        allowed = set(region) | {project.index}
        if any(c not in allowed for v in spatial | side for c in graph.consumers[v]):
            return None
        return _absorb_tail(graph, start, project, region, spatial, side, acts, reentry)
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


def _absorb_tail(
    graph: Graph,
    start: Node,
    project: Node,
    region: list[int],
    spatial: set[int],
    side: set[int],
    block_inputs: list[int],
    reentry: bool,
) -> Region:
    """Take in what follows the projection: element-wise ops (its batch norm) and the
    residual add of the block's input, so that the block's output is its last tensor."""
    nodes = [*region, project.index]
    value = project.outputs[0]
    residual = False
    shortcut = {graph.values[v].buffer for v in block_inputs}
    outputs = set(graph.outputs)
    while value not in outputs and len(graph.consumers[value]) == 1:
        node = graph.nodes[graph.consumers[value][0]]
        acts = graph.act_inputs(node)
        if _is_unary(graph, node) == value:
            pass
        elif (
            not residual
            and node.name == "add"
            and len(acts) == 2
            and value in acts
            and graph.values[[v for v in acts if v != value][0]].buffer in shortcut
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
        inputs=list(block_inputs),
        exits=[value],
        spatial=sorted(spatial),
        side=sorted(side),
        channels=start.conv.out_channels,
        in_channels=start.conv.in_channels,
        out_channels=project.conv.out_channels,
        residual=residual,
        two_pass=reentry,
    )


def find_blocks(graph: Graph) -> list[Region]:
    """Chunkable blocks, found by structure (the rule; no class names):

    - it starts at a dense convolution (groups = 1) that widens the channels, C_out > C_in:
      a 1x1 expansion, or the stem when the first block has no expansion of its own;
    - its output flows only through per-channel ops: batch norm, element-wise activations,
      depthwise convolutions (at least one), spatial padding, and squeeze-excitation (global
      pooling to a per-channel vector, any ops on such vectors, a per-channel gate);
    - it ends at one dense 1x1 convolution to fewer channels than the expanded tensor (the
      projection), with its batch norm and a residual add of the block's input taken in;
      or, with no projection, at global pooling (a head such as MobileNetV2's 1x1 conv to
      1280 channels, pooled channel by channel);
    - no inner tensor is used anywhere else (a shortcut or concatenation of an inner tensor
      means it must exist whole).
    MobileNetV1 has none (its 1x1 convs never narrow the channels), ShuffleNet's units none
    (their inner tensors are narrower and shuffled), MobileNetV2/V3's inverted residuals do.
    """
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


def _chunk_channels(channels: int, chunks: int | None) -> int:
    return 1 if chunks is None else math.ceil(channels / min(chunks, channels))


def efficient_steps(
    graph: Graph,
    rep: dict[int, int],
    dropped: set[int],
    regions: list[Region],
    sizes: _Sizes,
    chunks: int | None,
) -> tuple[list[Step], list[tuple[Region, int]]]:
    """Materialized steps with each region replaced by one op at its last node."""
    base = materialized_steps(graph, rep, dropped)
    owner = {n: r for r in regions for n in r.nodes}
    everywhere = _module_counts(graph, range(len(graph.nodes)))
    steps: list[Step] = []
    chunk_sizes: list[tuple[Region, int]] = []
    for node in graph.nodes:
        region = owner.get(node.index)
        if region is None:
            steps.append(base[node.index])
            continue
        if node.index != region.exit_node:
            continue
        per_chunk = _chunk_channels(region.channels, chunks)
        chunk = max(
            sizes.of_value(v) // region.channels * per_chunk
            for v in region.spatial
            if graph.values[v].shape[1] == region.channels
        )
        side_buffers = {rep[graph.values[v].buffer] for v in region.side} - dropped
        side = sum(sizes.of(b) for b in _counted(graph, side_buffers))
        chunk_sizes.append((region, chunk))
        exit_values = [(rep[graph.values[v].buffer], graph.values[v].shape) for v in region.exits]
        steps.append(
            Step(
                node=node.index,
                op="chunked block" if region.kind == "project" else "chunked head",
                module=_block_module(graph, region, everywhere),
                inputs=_counted(graph, (rep[graph.values[v].buffer] for v in region.inputs)),
                outputs=_counted(graph, (rep[graph.values[v].buffer] for v in region.exits)),
                internal=chunk + side,
                shape=graph.values[region.exits[0]].shape if region.exits else None,
                out_shapes=tuple(exit_values),
            )
        )
    return steps, chunk_sizes


def _ancestors(module: str) -> list[str]:
    parts = module.split(".") if module else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _module_counts(graph: Graph, nodes: Iterable[int]) -> Counter[str]:
    """How many ops reading activations run inside each module path (recursively)."""
    counts: Counter[str] = Counter()
    for n in nodes:
        node = graph.nodes[n]
        if node.module and graph.act_inputs(node):
            counts.update(_ancestors(node.module))
    return counts


def _block_module(graph: Graph, region: Region, everywhere: Counter[str]) -> str:
    """The smallest module holding the block and nothing else ("features.2"), or
    "first .. last" when there is none (a stem fused with the first block)."""
    first = graph.nodes[region.expand].module
    last = graph.nodes[region.exit_node].module
    inside = _module_counts(graph, region.nodes)

    def only_block(path: str) -> bool:
        return everywhere[path] == inside[path]

    common = _common_prefix([graph.nodes[n].module for n in region.nodes])
    if not common or not only_block(common):
        return f"{first} .. {last}" if first != last else first
    while "." in common and only_block(common.rsplit(".", 1)[0]):
        common = common.rsplit(".", 1)[0]
    return common


def _common_prefix(paths: Sequence[str]) -> str:
    parts = [p.split(".") for p in paths if p]
    if not parts:
        return ""
    common: list[str] = []
    for items in zip(*parts, strict=False):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return ".".join(common)


# --------------------------------------------------------------------------- liveness


def simulate(
    steps: Sequence[Step], size: dict[int, int], keep: Iterable[int] = ()
) -> list[tuple[Step, LivePoint]]:
    """Live bytes at each step: every buffer from the step creating it to its last use
    (buffers in ``keep``, the model's outputs, to the end). Steps that touch no activation
    give no point."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(steps):
        for b in step.outputs | step.inputs:
            first.setdefault(b, i)
            last[b] = i
    for b in keep:
        if b in first:
            last[b] = len(steps) - 1
    delta = [0] * (len(steps) + 1)
    for b, i in first.items():
        delta[i] += size[b]
        delta[last[b] + 1] -= size[b]
    points = []
    alive = 0
    for i, step in enumerate(steps):
        alive += delta[i]
        ins = sum(size[b] for b in step.inputs)
        outs = sum(size[b] for b in step.outputs - step.inputs)
        if not (ins or outs or step.internal):
            continue  # touches no activation (weight views, empty allocations): not a point
        live = alive + step.internal
        points.append(
            (
                step,
                LivePoint(
                    step=len(points),
                    op=step.op,
                    module=step.module,
                    shape=step.shape,
                    live_bytes=live,
                    input_bytes=ins,
                    output_bytes=outs,
                    held_bytes=live - ins - outs - step.internal,
                    internal_bytes=step.internal,
                ),
            )
        )
    return points


def _peak(points: Sequence[LivePoint]) -> LivePoint:
    if not points:
        return LivePoint(0, "", "", None, 0, 0, 0, 0, 0)
    return max(points, key=lambda p: (p.live_bytes, -p.step))


def _resolution_of(shape: tuple[int, ...]) -> tuple[tuple[int, int], int] | None:
    """((h, w), channels) of an activation shape, or None for ranks that have no map."""
    if len(shape) >= 4:
        return (shape[-2], shape[-1]), math.prod(shape[1:-2])
    if len(shape) in (1, 2):
        return (1, 1), shape[-1] if len(shape) == 2 else shape[0]
    return None


def resolution_table(
    points: Sequence[tuple[Step, LivePoint]], size: dict[int, int]
) -> tuple[ResolutionMemory, ...]:
    """Per spatial size: the largest single buffer, and the op whose output has that size
    with the most input + output (+ internal) bytes."""
    shape_of: dict[int, tuple[int, ...]] = {}
    for step, _ in points:
        for b, shape in step.out_shapes:
            shape_of.setdefault(b, shape)  # the shape it was created with, not a later view
    largest: dict[tuple[int, int], tuple[int, int, tuple[int, ...]]] = {}
    for b, shape in shape_of.items():
        where = _resolution_of(shape)
        if where is None:
            continue
        hw, channels = where
        if hw not in largest or size[b] > largest[hw][0]:
            largest[hw] = (size[b], channels, shape)
    biggest_op: dict[tuple[int, int], tuple[int, str]] = {}
    for step, point in points:
        if not step.outputs - step.inputs or step.shape is None:
            continue  # views and in-place ops create nothing
        where = _resolution_of(step.shape)
        if where is None:
            continue
        op_bytes = point.input_bytes + point.output_bytes + point.internal_bytes
        if where[0] not in biggest_op or op_bytes > biggest_op[where[0]][0]:
            biggest_op[where[0]] = (op_bytes, f"{step.module or '(model)'} {step.op}")
    rows = []
    for hw in sorted(largest, key=lambda r: (-r[0] * r[1], -r[0])):
        nbytes, channels, shape = largest[hw]
        op_bytes, op = biggest_op.get(hw, (0, ""))
        rows.append(ResolutionMemory(hw, channels, nbytes, shape, op_bytes, op))
    return tuple(rows)


# --------------------------------------------------------------------------- the analysis


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise MbprofError(
            f"input shape {shape!r} is not a tuple of integers such as (1, 3, 224, 224)"
        )
    if any(d < 1 for d in shape):
        raise MbprofError(f"input shape {shape!r} has a dimension < 1; every size must be >= 1")
    return shape


@dataclass
class Analysis:
    """Everything the analysis computed, for the report and for tests that look inside."""

    graph: Graph
    report: MemoryReport
    regions: list[Region]


def analyze(
    model: nn.Module,
    input_shape: Sequence[int],
    dtype: str = "fp16",
    chunks: int | None = None,
) -> Analysis:
    dtype = parse_mem_dtype(dtype, "dtype")
    chunks = parse_chunks(chunks, "chunks")
    shape = check_input_shape(input_shape)
    element = MEM_DTYPE_BYTES[dtype]

    graph = trace(model, shape)
    sizes = _Sizes(graph, element)
    size = {b.index: sizes.of(b.index) for b in graph.buffers}
    out_buffers = {graph.values[v].buffer for v in graph.outputs}

    eager, zero = eager_steps(graph)
    eager_size = {b: (0 if b in zero else n) for b, n in size.items()}
    eager_points = [p for _, p in simulate(eager, eager_size, out_buffers)]

    rep, dropped = materialized_buffers(graph)
    mat = materialized_steps(graph, rep, dropped)
    mat_keep = {rep[b] for b in out_buffers}
    mat_points = simulate(mat, size, mat_keep)

    regions = find_blocks(graph)
    eff, chunk_sizes = efficient_steps(graph, rep, dropped, regions, sizes, chunks)
    eff_points = simulate(eff, size, mat_keep)

    resolutions = resolution_table(mat_points, size)
    resolutions_eff = resolution_table(eff_points, size)
    everywhere = _module_counts(graph, range(len(graph.nodes)))
    blocks = tuple(
        ChunkedBlock(
            kind=r.kind,
            module=_block_module(graph, r, everywhere),
            expand=graph.nodes[r.expand].module,
            exit=graph.nodes[r.exit_node].module,
            in_channels=r.in_channels,
            expanded_channels=r.channels,
            out_channels=r.out_channels,
            chunk_channels=_chunk_channels(r.channels, chunks),
            chunk_bytes=chunk,
            residual=r.residual,
            two_pass=r.two_pass,
        )
        for r, chunk in chunk_sizes
    )
    image = graph.values[graph.input_value] if graph.input_value is not None else None
    report = MemoryReport(
        dtype=dtype,
        bytes_per_element=element,
        chunks=chunks,
        batch=shape[0],
        input_bytes=image.numel * element if image is not None else 0,
        max_tensor_bytes=max((r.tensor_bytes for r in resolutions), default=0),
        max_tensor_bytes_efficient=max((r.tensor_bytes for r in resolutions_eff), default=0),
        peak=_peak([p for _, p in mat_points]),
        peak_efficient=_peak([p for _, p in eff_points]),
        eager_peak_bytes=_peak(eager_points).live_bytes,
        resolutions=resolutions,
        resolutions_efficient=resolutions_eff,
        blocks=blocks,
        curve=tuple(p for _, p in mat_points),
        curve_efficient=tuple(p for _, p in eff_points),
    )
    return Analysis(graph=graph, report=report, regions=regions)


def analyze_memory(
    model: nn.Module,
    input_shape: Sequence[int],
    dtype: str = "fp16",
    chunks: int | None = None,
) -> MemoryReport:
    """Activation memory of one forward pass of ``model`` on an input of ``input_shape``
    (N, C, H, W), each floating-point element costing ``dtype``'s size (fp16, bf16, fp32,
    int8); ``chunks`` is T of the memory-efficient mode (None: one channel per chunk).

    A pure function: the model is traced on the meta device and left as it was.
    """
    return analyze(model, input_shape, dtype=dtype, chunks=chunks).report
