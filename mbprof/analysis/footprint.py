"""Will a configuration fit in memory? Checked before the expensive allocations, so
that a 20000x20000 input or a width of 100 is refused instead of swapping.

These are generous estimates that stand in for a bound, not measurements (the
memory analysis measures): float32 parameters counted on the meta device before
the model is built; activations from a forward pass at a small proxy resolution,
scaled by the ratio of pixel counts, times a safety factor that covers the live
tensors of a forward pass and fvcore's trace.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

FLOAT32_BYTES = 4
SAFETY = 3
PROXY_SIDE = 64


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


def param_bytes(build: Callable[[], nn.Module]) -> int:
    """Bytes of the float32 parameters and buffers of ``build()``, without allocating them."""
    with torch.device("meta"):
        model = build()
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() for t in tensors) * FLOAT32_BYTES


def _largest_op_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    largest = 0

    def hook(_module, inputs, output):
        nonlocal largest
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        largest = max(largest, sum(t.numel() * t.element_size() for t in tensors))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return largest


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Estimated bytes of the live activations of one float32 forward pass on ``input_shape``."""
    *lead, height, width = input_shape
    side = PROXY_SIDE
    if height * width <= side * side:
        return SAFETY * _largest_op_bytes(model, input_shape)
    try:
        proxy = _largest_op_bytes(model, (*lead, side, side))
    except RuntimeError:  # a model that needs its own resolution: measure shapes on meta
        with torch.device("meta"):
            return SAFETY * _largest_op_bytes(model.to("meta"), input_shape)
    return SAFETY * proxy * (height * width) // (side * side)
