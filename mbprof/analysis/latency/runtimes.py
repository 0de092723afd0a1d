"""What every runtime shares (the output checks, per-layer rows) and the two that are torch
itself: eager, profiled per layer by torch.profiler, and compile."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from mbprof.analysis.collector import native_quiet, removed_after
from mbprof.analysis.deploy import fold_batchnorm
from mbprof.analysis.latency.machine import TORCH_DTYPES, Clock
from mbprof.analysis.memory.trace import tensors
from mbprof.core.settings import LatencySettings

OUTPUT_RTOL = 1e-3  # an exported model's output may differ from torch's by this share
CALIBRATION_BATCHES, CALIBRATION_SEED = 4, 1
PROBE_IMAGES, PROBE_SEED = 16, 2  # a seed calibration never uses
FAR_COSINE = 0.8  # below this, a note says the int8 output strays far from fp32
CLOSENESS_NOTE = (
    "int8 cosine and top-1 agreement compare the int8 logits with fp32's on {n} random "
    "images that calibration never saw: how far the int8 program strays from fp32, not an "
    "accuracy figure (random weights give nearly flat logits: top-1 agreement swings widely "
    "from one set of weights to another)"
)


@dataclass
class Prepared:
    """A model made ready by its runtime: the timed call and what the runtime knows."""

    run: Callable[[], object]
    compile_s: float | None = None
    notes: list[str] = field(default_factory=list)
    reference: Callable[[], object] | None = None  # int8: the fp32 program, timed beside it
    figures: dict[str, Any] = field(default_factory=dict)  # ``Timing`` fields of its own
    threads: Callable[[], int | None] = torch.get_num_threads  # None: the runtime does not say
    layers: Callable[[int], RawProfile] | None = None  # per-layer time of n passes (None: none)
    how: str = ""  # how ``layers`` times them; "{passes}" stands for n


@dataclass
class Deployed:
    """A copy of the caller's model as it is timed, its input and the notes so far."""

    model: nn.Module
    example: torch.Tensor
    settings: LatencySettings
    notes: list[str]


@contextlib.contextmanager
def failing(what: str) -> Iterator[None]:
    """What fails inside raised again as ``RuntimeError("what: Type: first line")`` of its
    innermost cause (exporters wrap the informative error)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised with its cause in one line
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(cause)).strip().splitlines()
        said = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
        raise RuntimeError(f"{what}: {said}") from exc


def check_same_output(expected: torch.Tensor, got: Any, what: str) -> None:
    """Refuse an exported backend whose output differs from torch's by more than ``OUTPUT_RTOL``."""
    expected = expected.detach().float().cpu()
    got = torch.as_tensor(got).float().cpu()
    if got.shape != expected.shape:
        raise RuntimeError(
            f"{what} returned shape {tuple(got.shape)}, torch {tuple(expected.shape)}"
        )
    scale = expected.abs().max().item()
    error = (got - expected).abs().max().item()
    if not error <= OUTPUT_RTOL * scale + 1e-30:
        raise RuntimeError(
            f"{what} output differs from torch's by {error:.3g} (scale {scale:.3g}, "
            f"relative {error / scale if scale else float('inf'):.2g} > {OUTPUT_RTOL:g})"
        )


def random_batches(
    shape: tuple[int, ...], count: int = CALIBRATION_BATCHES, seed: int = CALIBRATION_SEED
) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(count)]


def closeness(form: Deployed, run_int8: Callable[[torch.Tensor], Any]) -> dict[str, float]:
    """``int8_cosine`` and ``int8_top1_agreement`` of ``run_int8`` against fp32 ``form.model``."""
    shape, notes, backend = tuple(form.example.shape), form.notes, form.settings.backend
    batches = random_batches(shape, math.ceil(PROBE_IMAGES / shape[0]), PROBE_SEED)
    flat = lambda y: torch.as_tensor(y).detach().float().reshape(shape[0], -1)  # noqa: E731
    with torch.inference_mode():
        ref = torch.cat([flat(form.model(x)) for x in batches])
    got = torch.cat([flat(run_int8(x)) for x in batches])
    cosine = torch.nn.functional.cosine_similarity(ref, got, dim=1).mean().item()
    agreement = (ref.argmax(1) == got.argmax(1)).float().mean().item()
    notes.append(CLOSENESS_NOTE.format(n=len(ref)))
    if not cosine >= FAR_COSINE:
        notes.append(
            f"{backend} int8 output strays far from fp32 (cosine {cosine:.2f}): the int8 "
            "ranges do not fit the model's activations (a model whose outputs are tiny, such "
            "as an uncalibrated random initialisation, quantizes to zeros)"
        )
    return {"int8_cosine": cosine, "int8_top1_agreement": agreement}


def exported(
    form: Deployed, what: str, fp32: Callable, int8: Callable | None, **prepared: Any
) -> Prepared:
    """The exported fp32 program checked against torch (int8: its closeness to fp32 too)."""
    with torch.inference_mode():
        expected = form.model(form.example)
    check_same_output(expected, fp32(form.example), f"{what} (fp32)" if int8 else what)
    if int8 is not None:
        prepared["figures"].update(closeness(form, int8))
    return Prepared(notes=form.notes, **prepared)


def deployed_form(
    model: nn.Module, input_shape: tuple[int, ...], settings: LatencySettings
) -> Deployed:
    """A copy of ``model`` as it is timed (eval, fuse_bn, device, dtype, layout), with its input."""
    notes: list[str] = []
    model = copy.deepcopy(model).eval()
    if settings.fuse_bn:
        model, folded, left = fold_batchnorm(model)
        notes.append(f"fuse_bn: folded {folded} batch norms into convolutions, {left} left")
    on = dict(device=settings.device, dtype=TORCH_DTYPES[settings.dtype])
    model = model.to(**on)
    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0)).to(**on)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    return Deployed(model, example, settings, notes)


def _in_torch(settings: LatencySettings, stack: contextlib.ExitStack) -> None:
    """Inference mode for the runs; on CUDA, cuDNN picks its kernels during warm-up."""
    stack.enter_context(torch.inference_mode())
    if settings.device == "cuda":
        stack.callback(setattr, torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)
        torch.backends.cudnn.benchmark = True
        stack.callback(torch.cuda.empty_cache)


def eager(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """The module itself, called in inference mode."""
    model, example, settings = form.model, form.example, form.settings
    _in_torch(settings, stack)
    return Prepared(
        run=lambda: model(example),
        notes=form.notes,
        layers=lambda n: profile_eager(model, example, n, cuda=settings.device == "cuda"),
        how="torch.profiler, {passes} passes, each module's own ops",
    )


def compiled(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """torch.compile of the module; its first call (which compiles) is ``compile_s``."""
    settings, example = form.settings, form.example
    _in_torch(settings, stack)
    torch._dynamo.reset()  # a fresh cache: no recompilation limit carried across models
    compiled = torch.compile(form.model, backend=settings.compile_backend)
    start = time.perf_counter()
    compiled(example)
    Clock(settings.device).sync()
    compile_s = time.perf_counter() - start
    form.notes.append(
        f"compile_s: torch.compile ({settings.compile_backend}) first call, "
        "which compiles and runs once"
    )
    return Prepared(run=lambda: compiled(example), compile_s=compile_s, notes=form.notes)


PREFIX, PASS = "mbprof.layer:", "mbprof.pass:"
ROOT, OUTSIDE = "(model)", "(outside any layer)"
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
    resolution_ms: float = 0.0  # a layer timed within it cannot raise the compute ceiling


def _nbytes(values) -> int:
    unique = {id(t): t for t in tensors(values)}
    return sum(t.numel() * t.element_size() for t in unique.values())


@contextlib.contextmanager
def _hooks(module: nn.Module, pre, post, only: set[str] | None = None) -> Iterator[None]:
    """Forward hooks ``pre`` and ``post``, path first, on each module (those in ``only``)."""
    handles: list = []
    with removed_after(handles):
        for path, child in module.named_modules():
            if only is not None and path not in only:
                continue
            try:
                handles.append(child.register_forward_pre_hook(functools.partial(pre, path)))
                handles.append(child.register_forward_hook(functools.partial(post, path)))
            except RuntimeError:  # a TorchScript module: no Python hooks; its ops stay unmapped
                continue
        yield


class Rows(dict):
    """Per-layer rows by key, after one pass of ``module`` that finds the modules with ops of
    their own (``owners``: bytes moved, ops) and each module's output shape."""

    def __init__(self, module: nn.Module, example: torch.Tensor, passes: int) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        super().__init__()
        self.module, self.passes, self.owners, self.shapes = module, passes, {}, {}
        self.types = {path: type(m).__name__ for path, m in module.named_modules()}
        stack: list[str] = []
        owners, types = self.owners, self.types

        class Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func, _types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if stack:
                    path = stack[-1]
                    row = owners.setdefault(path, RawLayer(path or ROOT, types[path]))
                    row.bytes_moved += _nbytes((args, kwargs)) + _nbytes(out)
                    row.ops += 1
                return out

        def post(path: str, _m, _i, output) -> None:
            stack.pop()
            if isinstance(output, torch.Tensor):
                self.shapes[path] = tuple(output.shape)

        pre = lambda path, _m, _i: stack.append(path)  # noqa: E731 - the active modules
        with _hooks(module, pre, post), torch.inference_mode(), Recorder():
            module(example)
        for path, row in owners.items():
            row.out_shape = self.shapes.get(path)

    def at(self, path: str | None, key: str, kind: str, mapped: bool) -> RawLayer:
        """The row of module ``path`` (else the row ``key``, an op of ``kind``); added if new."""
        key = (path or ROOT) if path in self.types else key
        if key not in self:
            kind, shape = self.types.get(path, kind), self.shapes.get(path)
            self[key] = RawLayer(key, kind, [0.0] * self.passes, mapped=mapped, out_shape=shape)
        return self[key]


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

    rows = Rows(module, example, passes)
    open_ranges: list = []  # a profiler range named PREFIX + path around each owner's forward
    scope = _FAST_RANGE or record_function
    spent = (lambda e: e.device_time_total) if cuda else (lambda e: e.cpu_time_total)
    clock = Clock("cuda" if cuda else "cpu")

    def pre(path: str, _m, _i) -> None:
        open_ranges.append(scope(PREFIX + path))
        open_ranges[-1].__enter__()

    def post(_path: str, _m, _i, _o) -> None:
        open_ranges.pop().__exit__(None, None, None)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    walls: list[float] = []
    # The profiler's first steps pay its own start-up: they are traced and thrown away.
    steps = schedule(wait=0, warmup=warmup, active=passes, repeat=1)
    with _hooks(module, pre, post, set(rows.owners)), torch.inference_mode():
        for _ in range(warmup):
            module(example)
        clock.sync()
        prof = profile(activities=activities, schedule=steps)
        with native_quiet():  # the profiler's C++ side prints its start on stderr
            prof.__enter__()
        try:
            for k in range(-warmup, passes):
                start = time.perf_counter()
                with record_function(f"{PASS}{k}"):
                    module(example)
                    clock.sync()
                if k >= 0:
                    walls.append((time.perf_counter() - start) * 1e3)
                with native_quiet():  # outside the timed pass
                    prof.step()
        finally:
            with native_quiet():
                prof.__exit__(None, None, None)
    per_pass: dict[str, list[float]] = defaultdict(lambda: [0.0] * passes)
    seen: list[Counter] = [Counter() for _ in range(passes)]
    for event in prof.events():
        parent = event.cpu_parent  # _pass_of(None) is None: an event outside any range
        if event.name.startswith((PREFIX, PASS)) or (k := _pass_of(parent)) is None:
            continue
        if parent.name.startswith(PREFIX):
            per_pass[parent.name[len(PREFIX) :]][k] += spent(event)
        elif parent.name.startswith(PASS):  # ops no module's range holds
            for op in _ops_in(event):
                seen[k][op.name] += 1
                row = rows.at(None, f"{op.name} #{seen[k][op.name]}", op.name, mapped=False)
                row.times_us[k] += spent(op)
                row.ops = 1
    owned = [replace(r, times_us=per_pass[p]) for p, r in rows.owners.items() if p in per_pass]
    return RawProfile(rows=owned + list(rows.values()), walls_ms=walls)
