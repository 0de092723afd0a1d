"""Record one forward pass on the meta device as a ``Graph`` (shapes only, no data)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mbprof.analysis.collector import collector_paused, removed_after
from mbprof.analysis.memory.graph import ACT, CONST, INPUT, PARAM, Buffer, Conv, Graph, Node, Value
from mbprof.analysis.memory.ops import ARGS_KEPT, CONV, op_info, shortcut
from mbprof.core.errors import MbprofError, ModelRunError, first_line


class Mode(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: do not import torch._dynamo (seconds) for it


class _Recorder(Mode):
    """Each op dispatched inside as a node of ``graph``, its tensors as values and buffers."""

    def __init__(self, param_storages: set[int], input_tensor: torch.Tensor) -> None:
        super().__init__()
        self.graph = Graph()
        self.params = param_storages
        self.input_storage = storage_key(input_tensor)
        self.current: dict[int, int] = {}  # id(tensor object) -> its current value
        self.storage_buffer: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # every tensor seen stays alive: ids stay unique
        self.modules: list[str] = []
        self.graph.input_value = self.value_of(input_tensor)

    def value_of(self, tensor: torch.Tensor, created_at: int | None = None) -> int:
        """A new value for an op's output (made by op ``created_at``), else the value a tensor
        argument holds; tensors made outside the trace become leaves."""
        known = self.current.get(id(tensor)) if created_at is None else None
        if known is not None:
            return known
        key = storage_key(tensor)
        buffer = self.storage_buffer.get(key)
        if buffer is None:
            kind = PARAM if key in self.params else INPUT if key == self.input_storage else CONST
            self.storage_buffer[key] = buffer = len(self.graph.buffers)
            floating = tensor.is_floating_point() or tensor.is_complex()
            kind, size = kind if created_at is None else ACT, tensor.element_size()
            nbytes = tensor.untyped_storage().nbytes()
            self.graph.buffers.append(Buffer(nbytes, size, floating, kind, created_at))
        self.current[id(tensor)] = index = len(self.graph.values)
        shape = tuple(int(d) for d in tensor.shape)
        nbytes = tensor.numel() * tensor.element_size()
        self.graph.values.append(Value(buffer, shape, tensor.is_contiguous(), nbytes))
        self.keep.append(tensor)
        return index

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = shortcut(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        index = len(self.graph.nodes)
        inputs = tuple(self.value_of(t) for t in tensors((args, kwargs)))
        outputs = tuple(self.value_of(t, index) for t in tensors(out))
        name, elementwise = op_info(func)
        kept = ()
        if name in ARGS_KEPT:
            kept = tuple(... if isinstance(a, torch.Tensor) else a for a in args)
        module, conv = self.modules[-1] if self.modules else "", conv_info(name, args, kwargs)
        self.graph.nodes.append(Node(index, name, module, inputs, outputs, elementwise, conv, kept))
        return out


def tensors(obj: object) -> list[torch.Tensor]:
    """The tensors in an op's arguments or results (tuples, lists, dicts), in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = obj.values()
    elif not isinstance(obj, (tuple, list)):
        return []
    found = []
    for item in obj:  # one pass, a call only for a nested container
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list, dict)):
            found.extend(tensors(item))
    return found


def storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def conv_info(name: str, args: tuple, kwargs: dict) -> Conv | None:
    if name not in CONV or len(args) < 2:
        return None
    weight, plain = args[1], name in ("convolution", "_convolution")
    transposed = plain and bool(args[6] if len(args) > 6 else kwargs.get("transposed", False))
    at = 8 if plain else 6
    groups = int(args[at] if len(args) > at else kwargs.get("groups", 1))
    channels = weight.shape[0], weight.shape[1] * groups  # (in, out) when transposed
    in_channels, out_channels = channels if transposed else channels[::-1]
    kernel = tuple(int(k) for k in weight.shape[2:])
    return Conv(int(in_channels), int(out_channels), kernel, groups, transposed)


def meta_state(model: nn.Module, device: str = "meta") -> dict[str, torch.Tensor]:
    """Data-free stand-ins of ``model``'s parameters and buffers (tied ones: one stand-in)."""
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {name: torch.empty_like(t, device=device) for name, t in state.items()}


@collector_paused()
def trace(model: nn.Module, input_shape: Sequence[int]) -> Graph:
    """Run ``model`` once on the meta device (else fake CPU tensors) and record its ops."""
    try:
        return _trace(model, input_shape, None)
    except MbprofError as on_meta:
        from torch._subclasses.fake_tensor import FakeTensorMode

        try:
            return _trace(model, input_shape, FakeTensorMode(allow_non_fake_inputs=True))
        except MbprofError:
            raise on_meta from None


def _trace(model: nn.Module, input_shape: Sequence[int], fake: object | None) -> Graph:
    device = "cpu" if fake is not None else "meta"
    with fake or nullcontext():
        state = meta_state(model, device)
        dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
        example = torch.empty(tuple(input_shape), dtype=dtype, device=device)
    builder = _Recorder({storage_key(t) for t in state.values()}, example)
    names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}

    def enter(module: nn.Module, _inputs: object) -> None:
        # a module made during the forward pass (not the model's): its ops are its caller's
        outer = builder.modules[-1] if builder.modules else ""
        builder.modules.append(names.get(id(module), outer))

    def leave(module: nn.Module, _inputs: object, _output: object) -> None:
        if builder.modules:
            builder.modules.pop()

    # Hooks common to all modules: two registrations, not two per module.
    handles = [
        nn_module.register_module_forward_pre_hook(enter),
        nn_module.register_module_forward_hook(leave, always_call=True),
    ]
    try:
        with removed_after(handles), torch.no_grad(), torch.device(device), fake or nullcontext():
            with builder:
                output = torch.func.functional_call(model, state, (example,), strict=False)
    except MbprofError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the graph cannot be traced
        raise ModelRunError(
            f"the memory analysis cannot trace {type(model).__name__}: its forward pass does not "
            f"run on the meta device ({type(exc).__name__}: {first_line(exc)[:200]}); it needs a "
            "graph without data-dependent control flow, .item() or CPU-only ops"
        ) from None

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
    # A parameter's storage has a buffer once an op took it (or a view of it) as an argument.
    params, seen = [name for name, _ in model.named_parameters()], builder.storage_buffer
    graph.params_read = frozenset(name for name in params if storage_key(state[name]) in seen)
    return graph
