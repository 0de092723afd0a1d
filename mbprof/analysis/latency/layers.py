"""Where an eager model's time goes, layer by layer: torch.profiler, aggregated to module paths."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from mbprof.analysis.collector import removed_after
from mbprof.analysis.memory.trace import tensors

PREFIX = "mbprof.layer:"
PASS = "mbprof.pass:"
ROOT = "(model)"
OUTSIDE = "(outside any layer)"
# The profiler's low-overhead range (no Python object per call, no op dispatch): about half
# the cost that record_function adds to a pass of ~150 ranges. Private, hence the fallback.
_FAST_RANGE = getattr(torch._C._profiler, "_RecordFunctionFast", None)


@dataclass
class RawLayer:
    """One row before its derived figures: times per pass in microseconds."""

    path: str
    type: str
    times_us: list[float] = field(default_factory=list)
    bytes_moved: int = 0
    ops: int = 0
    mapped: bool = True
    out_shape: tuple[int, ...] | None = None

    @property
    def time_ms(self) -> float:
        return statistics.median(self.times_us) / 1e3 if self.times_us else 0.0


@dataclass
class RawProfile:
    rows: list[RawLayer]
    walls_ms: list[float]  # each profiled pass, end to end
    # A layer timed within this says nothing of its rate (it cannot raise the compute ceiling).
    resolution_ms: float = 0.0

    @property
    def profiled_ms(self) -> float:
        return statistics.median(self.walls_ms)


def display_path(path: str) -> str:
    return path or ROOT


def row_of(rows: dict[str, RawLayer], key: str, kind: str, passes: int, mapped: bool) -> RawLayer:
    """The row ``key`` of ``rows``, added (no time yet in each of ``passes``) when missing."""
    if key not in rows:
        rows[key] = RawLayer(key, kind, [0.0] * passes, mapped=mapped)
    return rows[key]


def _nbytes(values) -> int:
    unique = {id(t): t for t in tensors(values)}
    return sum(t.numel() * t.element_size() for t in unique.values())


@contextmanager
def _hooks(module: nn.Module, pre, post, only: set[str] | None = None) -> Iterator[None]:
    """Forward hooks ``pre(path)`` and ``post(path)`` on each module (those in ``only``)."""
    handles: list = []
    with removed_after(handles):
        for path, child in module.named_modules():
            if only is not None and path not in only:
                continue
            try:
                handles.append(child.register_forward_pre_hook(pre(path)))
                handles.append(child.register_forward_hook(post(path)))
            except RuntimeError:  # a TorchScript module: no Python hooks; its ops stay unmapped
                continue
        yield


def discover(module: nn.Module, example: torch.Tensor) -> tuple[dict[str, RawLayer], dict]:
    """One pass: the modules with ops of their own (bytes moved, ops) and each output shape."""
    from torch.utils._python_dispatch import TorchDispatchMode

    stack: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    owners: dict[str, RawLayer] = {}
    kinds = dict((path, type(m).__name__) for path, m in module.named_modules())

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if stack:
                path = stack[-1]
                row = owners.setdefault(path, RawLayer(display_path(path), kinds[path]))
                row.bytes_moved += _nbytes((args, kwargs)) + _nbytes(out)
                row.ops += 1
            return out

    def post(path: str):
        def hook(_m, _i, output):
            stack.pop()
            if isinstance(output, torch.Tensor):
                shapes[path] = tuple(output.shape)

        return hook

    pre = lambda path: lambda _m, _i: stack.append(path)  # noqa: E731 - the active module paths
    with _hooks(module, pre, post), torch.inference_mode(), Recorder():
        module(example)
    for path, row in owners.items():
        row.out_shape = shapes.get(path)
    return owners, shapes


def _ops_in(event) -> list:
    """The ops of an event: itself, or the ops inside it (a TorchScript scope)."""
    if event.name.startswith("aten::") or not event.cpu_children:
        return [event]
    return [op for child in event.cpu_children for op in _ops_in(child)]


def _pass_of(event) -> int | None:
    """The profiled pass an event belongs to (None for the profiler's warm-up steps)."""
    while event is not None:
        if event.name.startswith(PASS):
            k = int(event.name[len(PASS) :])
            return k if k >= 0 else None
        event = event.cpu_parent
    return None


def profile_eager(
    module: nn.Module, example: torch.Tensor, passes: int, warmup: int = 2, cuda: bool = False
) -> RawProfile:
    """Per-layer times of ``module`` on ``example`` over ``passes`` profiled passes."""
    from torch.profiler import ProfilerActivity, profile, record_function, schedule

    from mbprof.analysis.collector import native_quiet

    owners, _ = discover(module, example)
    open_ranges: list = []  # a profiler range named PREFIX + path around each owner's forward

    def pre(path: str):
        name = PREFIX + path

        def hook(_m, _i):
            scope = _FAST_RANGE(name) if _FAST_RANGE else torch.profiler.record_function(name)
            scope.__enter__()
            open_ranges.append(scope)

        return hook

    def post(_path: str):
        return lambda _m, _i, _o: open_ranges.pop().__exit__(None, None, None)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    walls: list[float] = []
    # The profiler's first steps pay its own start-up: they are traced and thrown away.
    steps = schedule(wait=0, warmup=warmup, active=passes, repeat=1)
    with _hooks(module, pre, post, set(owners)), torch.inference_mode():
        for _ in range(warmup):
            module(example)
        if cuda:
            torch.cuda.synchronize()
        prof = profile(activities=activities, schedule=steps)
        with native_quiet():  # the profiler's C++ side prints its start on stderr
            prof.__enter__()
        try:
            for step in range(warmup + passes):
                k = step - warmup
                start = time.perf_counter()
                with record_function(f"{PASS}{k}"):
                    module(example)
                    if cuda:
                        torch.cuda.synchronize()
                if k >= 0:
                    walls.append((time.perf_counter() - start) * 1e3)
                with native_quiet():  # outside the timed pass
                    prof.step()
        finally:
            with native_quiet():
                prof.__exit__(None, None, None)
    per_pass: dict[str, list[float]] = defaultdict(lambda: [0.0] * passes)
    unmapped: dict[str, RawLayer] = {}
    seen: list[Counter] = [Counter() for _ in range(passes)]
    for event in prof.events():
        parent = event.cpu_parent
        if parent is None or event.name.startswith((PREFIX, PASS)):
            continue
        spent = event.device_time_total if cuda else event.cpu_time_total
        k = _pass_of(parent)
        if k is None:
            continue
        if parent.name.startswith(PREFIX):
            per_pass[parent.name[len(PREFIX) :]][k] += spent
        elif parent.name.startswith(PASS):  # ops no module's range holds
            for op in _ops_in(event):
                seen[k][op.name] += 1
                key = f"{op.name} #{seen[k][op.name]}"
                row = row_of(unmapped, key, op.name, passes, mapped=False)
                row.times_us[k] += op.device_time_total if cuda else op.cpu_time_total
                row.ops = 1
    rows = [
        replace(row, times_us=per_pass[path]) for path, row in owners.items() if path in per_pass
    ]
    return RawProfile(rows=rows + list(unmapped.values()), walls_ms=walls)
