"""Activation memory of a real forward pass, to check the analysis against."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from mbprof.analysis.latency.machine import TORCH_DTYPES
from mbprof.analysis.memory.schedules import alive
from mbprof.analysis.memory.trace import tensors
from mbprof.core.errors import MbprofError
from mbprof.core.records import MeasuredMemory
from mbprof.core.settings import parse_mem_dtype


class _StorageTracker(TorchDispatchMode):
    """Storages created by ops, with when each is created, read and freed."""

    def __init__(self, excluded: set[int]) -> None:
        super().__init__()
        self.excluded = excluded  # parameters, buffers, the input
        self.live: dict[int, list[int]] = {}  # storage key -> [allocation id, refs]
        self.sizes: list[int] = []  # allocation id -> bytes
        self.created: list[int] = []  # allocation id -> op index
        self.last_read: dict[int, int] = {}  # allocation id -> last op reading it
        self.current = 0
        self.peak = 0
        self.ops = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: do not import torch._dynamo for it

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= self.sizes[entry[0]]
            del self.live[key]

    def _track(self, tensor: torch.Tensor) -> None:
        key = tensor.untyped_storage()._cdata
        if key in self.excluded:
            return
        entry = self.live.get(key)
        if entry is None:
            nbytes = tensor.untyped_storage().nbytes()
            entry = [len(self.sizes), 0]
            self.sizes.append(nbytes)
            self.created.append(self.ops)
            self.live[key] = entry
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        for arg in tensors((args, kwargs)):
            entry = self.live.get(arg.untyped_storage()._cdata)
            if entry is not None:
                self.last_read[entry[0]] = self.ops
        out = func(*args, **kwargs)
        for tensor in tensors(out):
            self._track(tensor)
        self.ops += 1
        return out

    def last_use_peak(self, kept: set[int]) -> int:
        """Peak of the same storages, each freed after its last read (``kept`` ones to the end)."""
        spans = []
        for alloc, nbytes in enumerate(self.sizes):
            start = self.created[alloc]
            end = self.ops if alloc in kept else max(start, self.last_read.get(alloc, start))
            spans.append((start, end, nbytes))
        return max(alive(spans, self.ops + 1), default=0)


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
    excluded = {t.untyped_storage()._cdata for t in (*work.parameters(), *work.buffers())}
    excluded.add(example.untyped_storage()._cdata)
    tracker = _StorageTracker(excluded)
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
    kept = set()
    for tensor in tensors(output):
        entry = tracker.live.get(tensor.untyped_storage()._cdata)
        if entry is not None:
            kept.add(entry[0])
    return MeasuredMemory(
        device=device,
        dtype=dtype,
        peak_bytes=tracker.peak,
        last_use_peak_bytes=tracker.last_use_peak(kept),
        allocator_peak_bytes=allocator_peak,
    )
