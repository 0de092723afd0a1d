"""Each backend prepared for timing: eager, torch.compile, ONNX Runtime and ExecuTorch
(``executorch``), fp32 or int8 (``quantize``); the output of every exported form is checked
against torch's before it is timed."""

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
from typing import Any

import torch
from torch import nn

from mbprof.analysis.deploy import fold_batchnorm
from mbprof.analysis.latency.settings import TORCH_DTYPES
from mbprof.analysis.latency.timer import CudaClock
from mbprof.core.settings import LatencySettings


@dataclass
class Prepared:
    run: Callable[[], object]
    compile_s: float | None = None
    notes: list[str] = field(default_factory=list)
    # An int8 run: the same backend's fp32 program, timed right after ``run`` (the speed-up).
    reference: Callable[[], object] | None = None
    # ``Timing`` fields the backend measured itself (deployed bytes, delegation, closeness).
    figures: dict[str, Any] = field(default_factory=dict)
    # What was prepared, for a per-layer profile of the same form: the module as it runs
    # (eval, dtype, layout, batch norm folded) and its input; the exported ONNX file.
    module: nn.Module | None = None
    example: torch.Tensor | None = None
    onnx_path: Path | None = None
    program: Any = None  # executorch: the lowered program (``executorch.Lowered``)


@contextlib.contextmanager
def quiet(
    names: tuple[str, ...] = ("torch.onnx", "onnxscript", "torch.export"),
) -> Iterator[io.StringIO]:
    """Silence the ONNX exporter's (or the loggers ``names``') progress lines, warnings
    and log records, written from Python."""
    buffer = io.StringIO()
    loggers = [logging.getLogger(name) for name in names]
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
    """Export ``model`` with torch.onnx to ``folder`` (``model.onnx``) and open an ONNX
    Runtime CPU session on it (``open_session``). Returns (session, input name)."""
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
    session = open_session(path, threads)
    return session, session.get_inputs()[0].name


def open_session(path: str | Path, threads: int) -> Any:
    """An ONNX Runtime CPU session on the file ``path`` with ``session_options(threads)``."""
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path), session_options(threads), providers=["CPUExecutionProvider"]
    )


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


def threads_in_use(backend: str) -> int | None:
    """The intra-op threads ``backend`` runs with now (None: ONNX Runtime does not say):
    XNNPACK's thread pool for executorch, torch's for the others."""
    if backend == "onnxruntime":
        return None
    if backend == "executorch":
        from mbprof.analysis.latency.executorch import thread_count

        return thread_count()
    return torch.get_num_threads()


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

    if settings.backend == "executorch":
        from mbprof.analysis.latency.executorch import prepare_executorch

        return prepare_executorch(model, example, settings, notes)
    if settings.backend == "onnxruntime" and settings.quantize == "int8":
        from mbprof.analysis.latency.quantize import prepare_onnx_int8

        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="mbprof-onnx-"))
        return prepare_onnx_int8(model, example, settings, folder, notes)
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
        figures = {"deployed_bytes": (Path(folder) / "model.onnx").stat().st_size}
        return Prepared(
            run=lambda: session.run(None, feed),
            compile_s=compile_s,
            notes=notes,
            figures=figures,
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
