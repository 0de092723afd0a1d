"""Real inference latency: eager, torch.compile and ONNX Runtime, on the CPU or a GPU.

What a figure measures (the convention, written where it is computed):
- One *run* is one forward pass of a whole batch, from Python, output included
  (``model(x)``, or ``session.run`` for ONNX Runtime), in ``torch.inference_mode``.
- First ``warmup`` untimed runs (oneDNN / cuDNN pick their kernels there), then
  *blocks* of back-to-back runs, timed as a whole, until at least ``min_time_s``
  seconds are timed and at least ``MIN_BLOCKS`` blocks exist. A block has one run
  unless the clock's own cost would exceed 0.1% of a run (then enough runs to drown it).
- ``latency_ms`` is the median over blocks of (block time / runs in the block);
  ``latency_p10_ms`` / ``latency_p90_ms`` are the 10th / 90th percentiles of the same.
- On the CPU the clock is ``time.perf_counter``; on CUDA every block is bracketed by
  CUDA events and synchronised, so queued GPU work is counted.
- The thread count applies to every backend: torch's intra-op threads (restored
  afterwards) and ONNX Runtime's ``intra_op_num_threads``.
- One-off costs (torch.compile's first call; ONNX export and session creation) are
  reported apart as ``compile_s`` and never enter the latency.
- Achieved GFLOP/s = 2 x MAdds x batch / latency, MAdds counted by
  ``mbprof.analysis.counting`` (conv + FC multiply-accumulates, the papers' convention);
  the machine share compares it with the best rate of a large matrix product on the
  same device, threads and dtype (``machine_peak_gflops``, measured once and cached).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import logging
import math
import os
import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from mbprof.analysis.environment import cpu_model, device_name, environment
from mbprof.errors import MbprofError
from mbprof.parsing import check_latency_settings
from mbprof.records import LatencySettings, Timing

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MIN_BLOCKS = 5
CLOCK_SHARE = 1e-3  # the clock may cost at most this share of a block
ONNX_EXTRA_HINT = 'install the optional extra: pip install "mbprof[onnx]"'
CACHE_ENV = "MBPROF_CACHE_DIR"
PEAK_FILE = "machine_peak.json"


# --------------------------------------------------------------------------- settings


def _onnx_modules_missing() -> list[str]:
    import importlib

    missing = []
    for name in ("onnxruntime", "onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _probe_dtype(device: str, dtype: torch.dtype) -> None:
    """Run the ops of a mobile network once in ``dtype`` on ``device`` (raises if it cannot)."""
    probe = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()
    probe = probe.to(device=device, dtype=dtype)
    with torch.inference_mode():
        x = torch.randn(1, 3, 8, 8, device=device, dtype=dtype)
        probe(x) + 1
    if device == "cuda":
        torch.cuda.synchronize()


def resolve_settings(settings: LatencySettings) -> LatencySettings:
    """Check ``settings`` and decide what "auto" means here: the device ("cuda" when torch
    sees a GPU, except for ONNX Runtime, which runs on the CPU) and the thread count
    (torch's current one). Raises ``MbprofError`` with one sentence for anything this
    machine cannot run, before any model is built."""
    settings = check_latency_settings(settings)
    device = settings.device
    if device == "auto":
        usable = torch.cuda.is_available() and settings.backend != "onnxruntime"
        device = "cuda" if usable else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MbprofError(
            f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; "
            "use --device cpu or --device auto"
        )
    if settings.backend == "onnxruntime":
        if device != "cpu":
            raise MbprofError(
                "--backend onnxruntime runs an ONNX Runtime CPU session; use --device cpu"
            )
        if settings.dtype != "fp32":
            raise MbprofError(
                f"--dtype {settings.dtype}: the onnxruntime backend runs fp32 models only; "
                "use --dtype fp32"
            )
        if settings.channels_last:
            raise MbprofError(
                "--channels-last applies to the eager and compile backends; ONNX Runtime "
                "chooses its own memory layout"
            )
        missing = _onnx_modules_missing()
        if missing:
            raise MbprofError(
                f"--backend onnxruntime needs {', '.join(missing)}, {'which are' if len(missing) > 1 else 'which is'} not installed; "
                + ONNX_EXTRA_HINT
            )
    dtype = TORCH_DTYPES[settings.dtype]
    if device == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise MbprofError(
            f"--dtype bf16: {device_name('cuda')} does not support bfloat16; use fp16 or fp32"
        )
    if dtype is not torch.float32:
        try:
            _probe_dtype(device, dtype)
        except (RuntimeError, NotImplementedError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MbprofError(
                f"--dtype {settings.dtype} cannot run on {device} ({device_name(device)}): "
                f"{first}; use --dtype fp32"
            ) from None
    threads = settings.threads if settings.threads is not None else torch.get_num_threads()
    return replace(settings, device=device, threads=threads)


# --------------------------------------------------------------------------- batch-norm folding


def _is_conv_bn(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and conv.out_channels == bn.num_features
    )


def _fold_traced(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold with a torch.fx trace: every call of a Conv2d whose only user is a BatchNorm2d."""
    from torch.fx import Node, symbolic_trace
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    traced = symbolic_trace(model)
    modules = dict(traced.named_modules())
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folded = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        prev = node.args[0]
        if not isinstance(prev, Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        conv, bn = modules[prev.target], modules[node.target]
        if not _is_conv_bn(conv, bn) or calls[prev.target] != 1 or calls[node.target] != 1:
            continue
        fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
        parent_name, _, attr = prev.target.rpartition(".")
        setattr(traced.get_submodule(parent_name) if parent_name else traced, attr, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        traced.graph.erase_node(node)
        folded += 1
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()
    return traced, folded


def _fold_sequential(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold Conv2d -> BatchNorm2d neighbours inside nn.Sequential containers (the fallback
    for models that torch.fx cannot trace)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = container._modules[first], container._modules[second]
            if conv is not None and bn is not None and _is_conv_bn(conv, bn):
                container._modules[first] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                container._modules[second] = nn.Identity()
                folded += 1
    return model, folded


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int, int]:
    """A copy of ``model`` (eval mode) with each BatchNorm2d that directly follows a
    Conv2d folded into that convolution's weight and bias: the deployed form.

    Returns (folded model, batch norms folded, batch norms left). The original model
    is not touched. Output is the same up to float rounding.
    """
    model = copy.deepcopy(model).eval()
    try:
        fused, folded = _fold_traced(model)
    except Exception:  # noqa: BLE001 - fx cannot trace every model; fall back, never fail
        fused, folded = _fold_sequential(copy.deepcopy(model))
    left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    return fused.eval(), folded, left


# --------------------------------------------------------------------------- clocks and blocks


class CpuClock:
    """Wall time of a block on the CPU (``time.perf_counter``)."""

    def sync(self) -> None:
        pass

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        return time.perf_counter() - start


class CudaClock:
    """GPU time of a block between two CUDA events, waited for at the end of the block."""

    def __init__(self, device: str = "cuda") -> None:
        self.device = torch.device(device)

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)

    def time_block(self, fn: Callable[[], object], runs: int) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


@dataclass(frozen=True)
class BlockStats:
    median_s: float
    p10_s: float
    p90_s: float
    runs: int
    blocks: int
    runs_per_block: int
    per_run_s: tuple[float, ...] = field(repr=False)


def time_blocks(
    fn: Callable[[], object],
    min_time_s: float,
    warmup: int,
    clock: CpuClock | CudaClock | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> BlockStats:
    """Warm up, then time blocks of runs of ``fn`` until ``min_time_s`` seconds and
    ``min_blocks`` blocks are collected (see the module's docstring for the convention)."""
    clock = clock or CpuClock()
    for _ in range(warmup):
        fn()
    clock.sync()
    overhead = statistics.median(clock.time_block(lambda: None, 0) for _ in range(5))
    first = max(clock.time_block(fn, 1), 1e-9)  # one more warm run that sizes the blocks
    runs = max(1, math.ceil(overhead / (CLOCK_SHARE * first)))
    runs = min(runs, max(1, int(min_time_s / min_blocks / first)))
    per_run: list[float] = []
    total = 0.0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while total < min_time_s or len(per_run) < min_blocks:
            elapsed = clock.time_block(fn, runs)
            per_run.append(elapsed / runs)
            total += elapsed
    finally:
        if was_enabled:
            gc.enable()
    deciles = statistics.quantiles(per_run, n=10, method="inclusive")
    return BlockStats(
        median_s=statistics.median(per_run),
        p10_s=deciles[0],
        p90_s=deciles[-1],
        runs=runs * len(per_run),
        blocks=len(per_run),
        runs_per_block=runs,
        per_run_s=tuple(per_run),
    )


# --------------------------------------------------------------------------- backends


@dataclass
class Prepared:
    run: Callable[[], object]
    compile_s: float | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Silence the ONNX exporter's progress lines, warnings and log records."""
    buffer = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
        ):
            warnings.simplefilter("ignore")
            yield buffer
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _root_cause(exc: BaseException) -> str:
    """'Type: first line' of the innermost cause (exporters wrap the informative error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _check_same_output(expected: torch.Tensor, got: torch.Tensor, what: str) -> None:
    """Refuse a backend whose output is not the model's (an export that went wrong)."""
    expected = expected.detach().float().cpu()
    got = torch.as_tensor(got).float().cpu()
    if got.shape != expected.shape:
        raise RuntimeError(
            f"{what} returned shape {tuple(got.shape)}, torch {tuple(expected.shape)}"
        )
    scale = expected.abs().max().item()
    error = (got - expected).abs().max().item()
    if not error <= 1e-3 * scale + 1e-30:
        raise RuntimeError(f"{what} output differs from torch's by {error:.3g} (scale {scale:.3g})")


def onnx_session(model: nn.Module, example: torch.Tensor, threads: int, folder: str | Path):
    """Export ``model`` with torch.onnx to ``folder`` and open an ONNX Runtime CPU session
    with ``threads`` intra-op threads (one inter-op thread, sequential execution, all
    graph optimisations). Returns (session, input name)."""
    import onnxruntime as ort

    path = Path(folder) / "model.onnx"
    with _quiet():
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["input"],
                output_names=["output"],
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            raise RuntimeError(f"ONNX export failed: {_root_cause(exc)}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def _prepare(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings,
    stack: contextlib.ExitStack,
) -> Prepared:
    notes: list[str] = []
    model = copy.deepcopy(model).eval()
    if settings.fuse_bn:
        model, folded, left = fold_batchnorm(model)
        notes.append(f"fuse_bn: folded {folded} batch norms into convolutions, {left} left")
    dtype = TORCH_DTYPES[settings.dtype]
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(input_shape, generator=generator)
    model = model.to(device=settings.device, dtype=dtype)
    example = example.to(device=settings.device, dtype=dtype)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)

    if settings.backend == "onnxruntime":
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mbprof-onnx-"))
        start = time.perf_counter()
        session, name = onnx_session(model, example, settings.threads, folder)
        compile_s = time.perf_counter() - start
        feed = {name: example.numpy()}
        with torch.inference_mode():
            expected = model(example)
        _check_same_output(expected, session.run(None, feed)[0], "ONNX Runtime")
        notes.append("compile_s: ONNX export + ONNX Runtime session creation")
        return Prepared(run=lambda: session.run(None, feed), compile_s=compile_s, notes=notes)

    stack.enter_context(torch.inference_mode())
    if settings.device == "cuda":
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True  # let cuDNN pick its kernels during warm-up
        stack.callback(setattr, torch.backends.cudnn, "benchmark", previous)
        stack.callback(torch.cuda.empty_cache)
    if settings.backend == "compile":
        torch._dynamo.reset()  # a fresh cache: no recompilation limit carried across models
        compiled = torch.compile(model, backend=settings.compile_backend)
        clock = CudaClock() if settings.device == "cuda" else None
        start = time.perf_counter()
        compiled(example)
        if clock is not None:
            clock.sync()
        compile_s = time.perf_counter() - start
        notes.append(
            f"compile_s: torch.compile ({settings.compile_backend}) first call, "
            "which compiles and runs once"
        )
        return Prepared(run=lambda: compiled(example), compile_s=compile_s, notes=notes)
    return Prepared(run=lambda: model(example), notes=notes)


def measure(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: LatencySettings | None = None,
    madds: int | None = None,
) -> Timing:
    """Time ``model`` on a random input of ``input_shape`` (N, C, H, W) with ``settings``.

    N must equal ``settings.batch``. ``madds`` is the per-image MAdds count (counted with
    ``mbprof.analysis.counting`` when not given). The caller's model is not modified, and
    torch's thread count is restored afterwards, also when the run fails.
    """
    settings = resolve_settings(settings or LatencySettings(batch=input_shape[0]))
    if input_shape[0] != settings.batch:
        raise MbprofError(
            f"input batch {input_shape[0]} differs from the settings' batch {settings.batch}"
        )
    if madds is None:
        from mbprof.analysis.counting import count

        madds = count(model, (1, *input_shape[1:])).madds
    env = environment(settings)
    previous_threads = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            torch.set_num_threads(settings.threads)
            prepared = _prepare(model, input_shape, settings, stack)
            clock = CudaClock() if settings.device == "cuda" else CpuClock()
            stats = time_blocks(prepared.run, settings.min_time_s, settings.warmup, clock)
    finally:
        torch.set_num_threads(previous_threads)
    achieved = 2 * madds * settings.batch / stats.median_s / 1e9
    peak = machine_peak_gflops(settings.device, settings.threads, settings.dtype, at_least=achieved)
    if achieved > peak:
        prepared.notes.append(
            f"this model ran faster ({achieved:.1f} GFLOP/s) than the machine reference "
            f"({peak:.1f} GFLOP/s, a matrix product): the machine was busy while one of them "
            f"ran; remove {cache_dir() / PEAK_FILE} to measure the reference again"
        )
    return Timing(
        latency_ms=stats.median_s * 1e3,
        latency_p10_ms=stats.p10_s * 1e3,
        latency_p90_ms=stats.p90_s * 1e3,
        runs=stats.runs,
        blocks=stats.blocks,
        runs_per_block=stats.runs_per_block,
        warmup=settings.warmup,
        min_time_s=settings.min_time_s,
        environment=env,
        compile_s=prepared.compile_s,
        madds=madds,
        machine_peak_gflops=peak,
        notes=tuple(prepared.notes),
    )


# --------------------------------------------------------------------------- machine reference


def cache_dir() -> Path:
    """``$MBPROF_CACHE_DIR``, else ``$XDG_CACHE_HOME/mbprof``, else ``~/.cache/mbprof``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mbprof"


def peak_key(device: str, threads: int, dtype: str) -> str:
    return (
        f"{device}|{device_name(device)}|{cpu_model()}|threads={threads}|{dtype}"
        f"|torch {torch.__version__}"
    )


MATMUL_N = {"cpu": 1024, "cuda": 4096}


def measure_matmul_peak(
    device: str, threads: int, dtype: str, min_time_s: float = 0.5, n: int | None = None
) -> tuple[float, int]:
    """The best rate (GFLOP/s) of an n x n by n x n matrix product in ``dtype``, counting
    2 n^3 FLOPs: blocks are timed for ``min_time_s`` and the fastest block is kept. n is
    fixed per device (``MATMUL_N``), large enough to run at full speed, and independent of
    how busy the machine is. Returns (GFLOP/s, n)."""
    n = n or MATMUL_N["cuda" if device.startswith("cuda") else "cpu"]
    torch_dtype = TORCH_DTYPES[dtype]
    clock = CudaClock(device) if device.startswith("cuda") else CpuClock()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            a = torch.randn(n, n, device=device).to(torch_dtype)
            b = torch.randn(n, n, device=device).to(torch_dtype)
            stats = time_blocks(lambda: torch.mm(a, b), min_time_s, 2, clock)
    finally:
        torch.set_num_threads(previous)
    return 2 * n**3 / min(stats.per_run_s) / 1e9, n


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def machine_peak_gflops(
    device: str,
    threads: int,
    dtype: str,
    refresh: bool = False,
    min_time_s: float = 0.5,
    at_least: float | None = None,
) -> float:
    """The machine reference for (device, threads, dtype), in GFLOP/s: the best rate of a
    large matrix product ever measured here, kept in ``machine_peak.json`` in
    ``cache_dir()``. Measured (``measure_matmul_peak``) when missing, when ``refresh`` is
    set, or when the cached value is below ``at_least`` (a model ran faster than the
    reference: it was measured on a busy machine), where the cache keeps the larger value.
    An unwritable cache only costs a re-measurement."""
    path = cache_dir() / PEAK_FILE
    key = peak_key(device, threads, dtype)
    entry = _read_cache(path).get(key)
    cached = None
    if isinstance(entry, dict) and isinstance(entry.get("gflops"), (int, float)):
        cached = float(entry["gflops"])
    if cached is not None and not refresh and (at_least is None or cached >= at_least):
        return cached
    measured, n = measure_matmul_peak(device, threads, dtype, min_time_s=min_time_s)
    gflops = measured if refresh else max(measured, cached or 0.0)
    cache = _read_cache(path)  # another process may have written meanwhile
    cache[key] = {
        "gflops": gflops,
        "matmul_n": n,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "last_measured_gflops": measured,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{PEAK_FILE}.", dir=path.parent)
    except OSError:
        return gflops
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(cache, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return gflops
