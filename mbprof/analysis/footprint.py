"""Will a configuration fit in memory? Generous estimates, checked before expensive allocations."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import TorchDispatchMode

from mbprof.analysis.collector import removed_after
from mbprof.analysis.memory.graph import ACT, INPUT, Graph
from mbprof.analysis.memory.trace import meta_state, tensors
from mbprof.core.errors import MbprofError, ResourceError, UserCodeExit, first_line

FLOAT32_BYTES = 4
SAFETY = 3
PROXY_SIDE = 64
# How the parameters were sized (``ParamSizing.path``), cheapest first.
META, REGISTERED, REAL = "meta device", "moved to meta as registered", "built for real"


class OverBudget(ResourceError):
    """A bounded real build or forward pass stopped past the budget."""

    def __init__(self, need: int, what: str) -> None:
        super().__init__(f"{what} need at least {need} bytes")
        self.need, self.what = need, what


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo, or the physical pages the OS reports free."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63 - 1  # unknown: do not refuse


def reason(exc: BaseException) -> str:
    """``Type: first line`` of why a step failed (its cause if mbprof wrapped it), for a note."""
    if isinstance(exc, MbprofError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = ": ".join(filter(None, (type(exc).__name__, first_line(exc))))
    return text if len(text) <= 160 else text[:157] + "..."


def _retry_after(exc: Exception) -> bool:
    """Whether a cheaper step's failure is worth trying a dearer step."""
    wrapped = not isinstance(exc, MbprofError) or exc.__cause__ is not None
    return wrapped and not isinstance(exc, UserCodeExit)


def _registration_hooks(on_param: Callable, on_buffer: Callable) -> AbstractContextManager:
    # Global hooks (every module built in this process meanwhile): builds run one at a time.
    param = nn_module.register_module_parameter_registration_hook(on_param)
    return removed_after([param, nn_module.register_module_buffer_registration_hook(on_buffer)])


def parameters_to_meta() -> AbstractContextManager:
    """Build for real, each parameter and buffer moved to the meta device as it is registered."""

    def on_param(_module: nn.Module, _name: str, param: nn.Parameter | None):
        if type(param) is nn.Parameter and param.device.type != "meta":
            return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        return None  # None, lazy or custom parameters stay as they are

    def on_buffer(_module: nn.Module, _name: str, buffer: torch.Tensor | None):
        return None if buffer is None or buffer.device.type == "meta" else buffer.to("meta")

    return _registration_hooks(on_param, on_buffer)


def parameters_bounded(budget: int) -> AbstractContextManager:
    """Build for real, ``OverBudget`` once the registered float32 bytes pass ``budget``."""
    total = 0

    def add(_module: nn.Module, _name: str, tensor: torch.Tensor | None) -> None:
        nonlocal total
        total += 0 if tensor is None else tensor.numel() * FLOAT32_BYTES
        if total > budget:
            raise OverBudget(total, "parameters (counted while building it for real)")

    return _registration_hooks(add, add)


def build_counted(build: Callable[[], nn.Module], budget: int) -> nn.Module | None:
    """``build()`` for real within ``budget`` bytes of parameters, else None."""
    try:
        with parameters_bounded(budget):
            return build()
    except (OverBudget, MemoryError, RuntimeError):  # a tensor too large to allocate at all
        return None


def graph_activation_bytes(graph: Graph) -> int:
    """``SAFETY`` x the largest activation inputs + outputs of one op of a meta-device trace."""
    largest = 0
    for node in graph.nodes:
        values = [v for v in node.inputs if graph.kind(v) in (ACT, INPUT)] + list(node.outputs)
        largest = max(largest, sum(graph.values[v].nbytes for v in values))
    return SAFETY * largest


class ParamSizing(NamedTuple):
    """The model built to size its parameters, the path that worked, and a note."""

    model: nn.Module
    path: str
    note: str = ""


def size_parameters(build: Callable[[], nn.Module], budget: int) -> ParamSizing:
    """Size ``build()``'s parameters by the cheapest path that works."""
    try:
        with torch.device("meta"):
            return ParamSizing(build(), META)
    except Exception as exc:  # noqa: BLE001 - the builder cannot run on the meta device
        if not _retry_after(exc):
            raise
        on_meta = reason(exc)
    why = f"the builder does not run on the meta device ({on_meta})"
    try:
        note = "parameters sized with each one moved to the meta device as it was registered"
        with parameters_to_meta():
            return ParamSizing(build(), REGISTERED, f"{note}: {why}")
    except Exception as exc:  # noqa: BLE001 - it reads a parameter's value: build for real
        if not _retry_after(exc):
            raise
        again = reason(exc)
        why += ", nor with its parameters there" + ("" if again == on_meta else f" ({again})")
    note = "parameters counted by building it for real, stopped had they outgrown free memory"
    with parameters_bounded(budget):
        return ParamSizing(build(), REAL, f"{note}: {why}")


class _Bounded(TorchDispatchMode):
    """Stops a real forward pass once its outputs' bytes, summed, pass ``budget``."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget, self.total = budget, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        self.total += sum(t.numel() * t.element_size() for t in tensors(out))
        if self.total > self.budget:
            raise OverBudget(self.total, "activations (a real forward pass, stopped)")
        return out


def _largest_op_bytes(
    model: nn.Module, input_shape: tuple[int, ...], *, meta: bool = False, budget: int = 0
) -> int:
    """The largest inputs + output of one leaf module in a forward pass of a zero input."""
    largest = 0

    def hook(_module, inputs, output):
        nonlocal largest
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        largest = max(largest, sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with removed_after(handles):
        if meta:
            example = torch.zeros(input_shape, device="meta")
            with torch.no_grad(), torch.device("meta"):
                torch.func.functional_call(model, meta_state(model), (example,), strict=False)
        else:
            bound = _Bounded(budget) if budget else nullcontext()
            with torch.inference_mode(), bound:
                model(torch.zeros(input_shape))
    return largest


def activation_bytes(
    model: nn.Module, input_shape: tuple[int, ...], budget: int = 2**63 - 1
) -> tuple[int, str]:
    """Estimated live activation bytes of one float32 forward pass, and a note on the path taken."""
    *lead, height, width = input_shape
    side = PROXY_SIDE
    if height * width <= side * side:
        return SAFETY * _largest_op_bytes(model, input_shape), ""
    try:
        proxy = _largest_op_bytes(model, (*lead, side, side))
        return SAFETY * proxy * (height * width) // (side * side), ""
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model that needs its own resolution
        probe = f"the {side}x{side} probe failed ({reason(exc)})"
    at = f"{height}x{width}"
    try:
        largest = _largest_op_bytes(model, input_shape, meta=True)
        return SAFETY * largest, f"activations sized on the meta device at {at}: {probe}"
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - it reads tensor values: run it for real
        on_meta = reason(exc)
    largest = _largest_op_bytes(model, input_shape, budget=budget)
    return SAFETY * largest, (
        f"activations sized by a real forward pass at {at}, stopped had it outgrown free "
        f"memory: {probe}, and it does not run on the meta device ({on_meta})"
    )
