"""Each backend prepared for timing: eager, torch.compile and ONNX Runtime; the output of
every exported form is checked against torch's before it is timed."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mbprof.analysis.latency.fold import fold_batchnorm
from mbprof.analysis.latency.settings import TORCH_DTYPES
from mbprof.analysis.latency.timer import CudaClock
from mbprof.core.settings import LatencySettings


@dataclass
class Prepared:
    run: Callable[[], object]
    compile_s: float | None = None
    notes: list[str] = field(default_factory=list)
    # What was prepared, for a per-layer profile of the same form: the module as it runs
    # (eval, dtype, layout, batch norm folded) and its input; the exported ONNX file.
    module: nn.Module | None = None
    example: torch.Tensor | None = None
    onnx_path: Path | None = None


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
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


def root_cause(exc: BaseException) -> str:
    """'Type: first line' of the innermost cause (exporters wrap the informative error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


OUTPUT_RTOL = 1e-3  # an exported model's output may differ from torch's by this share


def check_same_output(expected: torch.Tensor, got: torch.Tensor, what: str) -> None:
    """Refuse a backend whose output is not the model's (an export that went wrong): every
    exported backend's output must match torch's to ``OUTPUT_RTOL`` relative to the
    output's scale (its largest magnitude), whatever that scale is; NaN never matches."""
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


def onnx_session(model: nn.Module, example: torch.Tensor, threads: int, folder: str | Path):
    """Export ``model`` with torch.onnx to ``folder`` and open an ONNX Runtime CPU session
    with ``threads`` intra-op threads (one inter-op thread, sequential execution, all
    graph optimisations). Returns (session, input name)."""
    import onnxruntime as ort

    path = Path(folder) / "model.onnx"
    with quiet():
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
            raise RuntimeError(f"ONNX export failed: {root_cause(exc)}") from exc
    options = session_options(threads)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def session_options(threads: int):
    """ONNX Runtime's options for a timed session: ``threads`` intra-op threads, one
    inter-op thread, sequential execution, all graph optimisations, warnings silenced."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def prepare(
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
        check_same_output(expected, session.run(None, feed)[0], "ONNX Runtime")
        notes.append("compile_s: ONNX export + ONNX Runtime session creation")
        return Prepared(
            run=lambda: session.run(None, feed),
            compile_s=compile_s,
            notes=notes,
            module=model,
            example=example,
            onnx_path=Path(folder) / "model.onnx",
        )

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
    return Prepared(run=lambda: model(example), notes=notes, module=model, example=example)
