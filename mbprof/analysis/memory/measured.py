"""Activation memory of a real forward pass, to check the analysis against."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence

import torch
from torch import nn

from mbprof.analysis.latency.machine import TORCH_DTYPES
from mbprof.analysis.memory.schedules import alive
from mbprof.analysis.memory.trace import Mode, tensors
from mbprof.core.errors import MbprofError
from mbprof.core.records import MeasuredMemory
from mbprof.core.settings import parse_mem_dtype


class _StorageTracker(Mode):
    """Storages created by ops, with when each is created, read and freed."""

    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded = excluded  # parameters, buffers, the input
        self.live: dict[int, list[int]] = {}  # storage key -> [allocation id, refs]
        self.spans: list[list[int]] = []  # allocation id -> [created at op, last read, bytes]
        self.current = self.peak = self.ops = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.current -= self.spans[entry[0]][2]
                del self.live[key]

    def read(self, found: object) -> None:
        """The storages of the tensors in ``found`` read at the current op."""
        for tensor in tensors(found):
            entry = self.live.get(tensor.untyped_storage()._cdata)
            if entry is not None:
                self.spans[entry[0]][1] = self.ops

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        self.read((args, kwargs))
        out = func(*args, **kwargs)
        for tensor in tensors(out):
            key = tensor.untyped_storage()._cdata
            if key in self.excluded:
                continue
            if key not in self.live:
                nbytes = tensor.untyped_storage().nbytes()
                self.live[key] = [len(self.spans), 0]
                self.spans.append([self.ops, self.ops, nbytes])
                self.current += nbytes
                self.peak = max(self.peak, self.current)
            self.live[key][1] += 1
            weakref.finalize(tensor, self._release, key)
        self.ops += 1
        return out


def measure_memory(
    model: nn.Module,
    input_shape: Sequence[int],
    dtype: str = "fp16",
    device: str = "cpu",
) -> MeasuredMemory:
    """Run a copy of ``model`` once and measure the activation storages it allocates."""
    if device == "cuda" and not torch.cuda.is_available():
        raise MbprofError("device 'cuda' is not available on this machine; use 'cpu'")
    dtype = parse_mem_dtype(dtype, "dtype")
    if dtype not in TORCH_DTYPES:
        raise MbprofError(
            f"dtype {dtype!r} cannot be measured: a real forward pass runs in fp16, bf16 or "
            "fp32 (int8 needs a quantized model); the analysis itself takes int8"
        )
    if any(p.is_meta for p in model.parameters()):
        raise MbprofError("a model on the meta device cannot be measured; build it on the CPU")
    torch_dtype = TORCH_DTYPES[dtype]
    work = copy.deepcopy(model).to(device=device, dtype=torch_dtype).eval()
    example = torch.zeros(tuple(input_shape), dtype=torch_dtype, device=device)
    held = (*work.parameters(), *work.buffers(), example)
    tracker = _StorageTracker({t.untyped_storage()._cdata for t in held})
    allocator_peak = None
    if example.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    with torch.no_grad(), tracker:
        output = work(example)
    if example.is_cuda:
        torch.cuda.synchronize()
        allocator_peak = torch.cuda.max_memory_allocated() - before
    tracker.read(output)  # the outputs are held to the end
    # the same storages, each freed after its last read
    last_use_peak = max(alive(tracker.spans, tracker.ops + 1), default=0)
    return MeasuredMemory(device, dtype, tracker.peak, last_use_peak, allocator_peak)
