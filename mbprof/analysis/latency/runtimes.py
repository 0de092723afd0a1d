"""What every runtime shares, and the two that are torch itself (eager, compile)."""

from __future__ import annotations

import contextlib
import copy
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mbprof.analysis.deploy import fold_batchnorm
from mbprof.analysis.latency.layers import RawProfile, profile_eager
from mbprof.analysis.latency.machine import TORCH_DTYPES
from mbprof.analysis.latency.stability import Clock
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
    # Per-layer time of the same form over n passes, and how it was taken (None: no profile).
    layers: Callable[[int], tuple[RawProfile, str]] | None = None


@dataclass
class Deployed:
    """A copy of the caller's model as it is timed, its input and the notes so far."""

    model: nn.Module
    example: torch.Tensor
    settings: LatencySettings
    notes: list[str]


def root_cause(exc: BaseException) -> str:
    """'Type: first line' of the innermost cause (exporters wrap the informative error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


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


def random_batches(shape: tuple[int, ...], count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(count)]


def closeness(
    model: nn.Module,
    run_int8: Callable[[torch.Tensor], Any],
    shape: tuple[int, ...],
    notes: list[str],
    backend: str,
) -> dict[str, float]:
    """``int8_cosine`` and ``int8_top1_agreement`` of ``run_int8`` against fp32 ``model``."""
    batches = random_batches(shape, math.ceil(PROBE_IMAGES / shape[0]), PROBE_SEED)
    with torch.inference_mode():
        ref = torch.cat([model(x).detach().float().reshape(shape[0], -1) for x in batches])
    got = torch.cat(
        [torch.as_tensor(run_int8(x)).detach().float().reshape(shape[0], -1) for x in batches]
    )
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


def verify(
    form: Deployed, what: str, fp32: Callable, int8: Callable | None, figures: dict, backend: str
) -> None:
    """The exported fp32 program checked against torch; int8: its closeness to fp32 too."""
    with torch.inference_mode():
        expected = form.model(form.example)
    check_same_output(expected, fp32(form.example), f"{what} (fp32)" if int8 else what)
    if int8 is not None:
        shape = tuple(form.example.shape)
        figures.update(closeness(form.model, int8, shape, form.notes, backend))


def deployed_form(
    model: nn.Module, input_shape: tuple[int, ...], settings: LatencySettings
) -> Deployed:
    """A copy of ``model`` as it is timed (eval, fuse_bn, device, dtype, layout), with its input."""
    notes: list[str] = []
    model = copy.deepcopy(model).eval()
    if settings.fuse_bn:
        model, folded, left = fold_batchnorm(model)
        notes.append(f"fuse_bn: folded {folded} batch norms into convolutions, {left} left")
    dtype = TORCH_DTYPES[settings.dtype]
    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    model = model.to(device=settings.device, dtype=dtype)
    example = example.to(device=settings.device, dtype=dtype)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    return Deployed(model, example, settings, notes)


def _in_torch(settings: LatencySettings, stack: contextlib.ExitStack) -> None:
    """Inference mode for the runs; on CUDA, cuDNN picks its kernels during warm-up."""
    stack.enter_context(torch.inference_mode())
    if settings.device == "cuda":
        previous = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        stack.callback(setattr, torch.backends.cudnn, "benchmark", previous)
        stack.callback(torch.cuda.empty_cache)


def eager(form: Deployed, stack: contextlib.ExitStack) -> Prepared:
    """The module itself, called in inference mode."""
    model, example, settings = form.model, form.example, form.settings
    _in_torch(settings, stack)

    def layers(passes: int) -> tuple[RawProfile, str]:
        raw = profile_eager(model, example, passes, cuda=settings.device == "cuda")
        return raw, f"torch.profiler, {passes} passes, each module's own ops"

    return Prepared(run=lambda: model(example), notes=form.notes, layers=layers)


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
