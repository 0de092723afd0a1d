"""Building a configuration's model once, guarded: parameters and activations sized before
they are allocated, the model's own code contained (a failure names the model)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mbprof.analysis.collector import collector_paused
from mbprof.core.errors import MbprofError, ModelRunError, ResourceError, contained, first_line
from mbprof.core.records import MemoryReport, ModelSpec
from mbprof.core.units import format_value
from mbprof.models import get_model_info

if TYPE_CHECKING:
    from torch import nn

    from mbprof.analysis.footprint import ParamSizing
    from mbprof.analysis.memory.graph import Graph


# Of the memory the OS calls available, what a configuration may count on: the rest is
# left to the interpreter, the allocator's slack and whatever else starts meanwhile.
MARGIN = 0.9
# mbprof's own models are built once for real with their registrations counted, stopped
# past this many bytes (then sized on the meta device, as any other model is): a width of
# 50 (21.5 GB of parameters) is refused in a second, not after writing half of memory.
COUNTED_BUILD_MAX = 2**26


def _refuse_if_over(spec: ModelSpec, need: int, what: str, cause: str, have: int) -> None:
    if need > have:
        raise ResourceError(
            f"{spec.label} needs about {format_value(need, 'bytes')} for its {what}, more than the "
            f"{format_value(have, 'bytes')} of memory available (less a margin); "
            f"{cause or 'use a smaller resolution or width'}"
        )


def _state(model: nn.Module) -> tuple[int, int]:
    """float32 bytes of parameters and buffers, and those plus a copy of the largest one."""
    sizes = [t.numel() * 4 for t in [*model.parameters(), *model.buffers()]]
    return sum(sizes), sum(sizes) + max(sizes, default=0)


def _param_cause(spec: ModelSpec, have: int) -> str:
    """'use fewer classes' when the default 1000 classes would fit: the classifier is to blame."""
    import torch

    from mbprof.models import create_from_spec

    if spec.num_classes <= 1000:
        return ""
    try:
        with torch.device("meta"):
            fits = _state(create_from_spec(replace(spec, num_classes=1000)))[1] <= have
    except MbprofError:  # a user model that takes no num_classes
        return ""
    return f"use fewer classes ({spec.num_classes:,} classes are the cause)" if fits else ""


@dataclass(frozen=True)
class Built:
    """A model, notes on how it was sized, and the meta-device trace of one image if any."""

    model: nn.Module
    notes: tuple[str, ...] = ()
    graph: Graph | None = None


@collector_paused()  # a model's construction makes thousands of objects: see collector
def build_sized(
    spec: ModelSpec, weights: str | Path | None = None, batch: int = 1, *, trace: bool = False
) -> Built:
    """Build the model of ``spec`` once for real, in eval mode, after making sure that its
    parameters and a float32 pass of ``batch`` images fit (``ResourceError`` otherwise);
    ``trace``: keep the meta-device trace in ``Built.graph``."""
    from mbprof.analysis.footprint import (
        REAL,
        OverBudget,
        activation_bytes,
        available_memory_bytes,
        build_counted,
        graph_activation_bytes,
    )
    from mbprof.models import create_from_spec

    available = available_memory_bytes()
    have = int(available * MARGIN)
    builtin = is_builtin(spec)
    notes: tuple[str, ...] = ()
    # mbprof's own builders register each tensor before writing it: one real build, its
    # parameters counted as registered (past COUNTED_BUILD_MAX, or half the usable
    # memory: sized on meta first).
    model = None
    if builtin:
        build = lambda: create_from_spec(spec, weights=weights)  # noqa: E731
        model = build_counted(build, min(have // 2, COUNTED_BUILD_MAX))
    if model is None:
        sizing = size_parameters_of(spec, available)
        # Built for real already (a builder that needs real parameters): not twice.
        model = sizing.model.eval() if sizing.path == REAL and weights is None else None
        notes = (sizing.note,)
        del sizing  # a meta-device model: dropped before the real one is built
        if model is None:
            model = create_from_spec(spec, weights=weights)
    params = _state(model)[0]
    graph = _shapes(spec, model) if trace and builtin else None
    # Sized for one image and scaled (the estimate is linear in the batch), so that a huge
    # batch is refused before its input tensor is allocated.
    if graph is not None:
        per_image, note = graph_activation_bytes(graph), ""
    else:
        try:
            with running(spec, "running its forward pass to size its activations"):
                per_image, note = activation_bytes(model, spec.input_shape(1), have - params)
        except OverBudget as exc:  # the last resort, a real forward pass, was stopped
            _refuse_if_over(spec, exc.need, exc.what, "", have - params)
            raise
    what, cause = "parameters and activations", ""
    if batch > 1:
        what = f"parameters and activations at batch {batch:,}"
        if params + per_image <= have:
            most = (have - params) // max(per_image, 1)
            cause = f"use a smaller batch (batch {batch:,} is the cause; about {most:,} fit)"
    _refuse_if_over(spec, params + per_image * batch, what, cause, have)
    if spec.reparam:  # after the guard: one image of the model as built fits
        from mbprof.analysis.deploy import reparameterize

        with running(spec, "re-parameterizing it (reparam)"):
            deployed, reparam_note = reparameterize(model, spec.input_shape(1))
        notes += (reparam_note,)
        if deployed is not model:
            model = deployed
            graph = _shapes(spec, model) if graph is not None else None
    return Built(model, tuple(n for n in (*notes, note) if n), graph)


def _shapes(spec: ModelSpec, model: nn.Module) -> Graph | None:
    from mbprof.analysis.memory.trace import trace

    try:
        with running(spec, "tracing its forward pass on the meta device"):
            return trace(model, spec.input_shape(1))
    except MbprofError:
        return None


def size_parameters_of(spec: ModelSpec, available: int | None = None) -> ParamSizing:
    """Sized on the meta device (or, the last resort, for real), refused when over memory."""
    from mbprof.analysis.footprint import OverBudget, available_memory_bytes, size_parameters
    from mbprof.models import create_from_spec

    available = available or available_memory_bytes()
    have = int(available * MARGIN)
    try:
        sizing = size_parameters(lambda: create_from_spec(spec), available)
    except OverBudget as exc:
        _refuse_if_over(spec, exc.need, exc.what, _param_cause(spec, have), have)
        raise
    what = "parameters and a working copy of the largest"
    _refuse_if_over(spec, _state(sizing.model)[1], what, _param_cause(spec, have), have)
    return sizing


# Set on a model once it is calibrated, so that timing it again does not calibrate it again.
CALIBRATED = "_mbprof_calibrated"


def is_builtin(spec: ModelSpec) -> bool:
    factory = get_model_info(spec.model).factory
    return isinstance(factory, str) and factory.startswith("mbprof.models.")


def timing_ready(spec: ModelSpec, model: nn.Module, weights: str | Path | None = None) -> nn.Module:
    """``model`` as it is timed: one of mbprof's own, randomly initialised, is calibrated once
    in place (as a trained network, its activations do not vanish into slow denormals)."""
    if weights is not None or getattr(model, CALIBRATED, False) or not is_builtin(spec):
        return model
    from mbprof.models.calibration import calibrate

    with running(spec, "calibrating its batch-norm statistics"):
        calibrate(model, spec.resolution)
    setattr(model, CALIBRATED, True)
    return model


@contextmanager
def running(spec: ModelSpec, phase: str) -> Iterator[None]:
    """Name the model and what mbprof was doing when the model's own code raises."""
    try:
        with contained(spec.model, phase):
            yield
    except (MbprofError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the model named
        first = f": {first_line(exc)}" if first_line(exc) else ""
        at = spec.label.removeprefix(spec.model).strip()
        raise ModelRunError(
            f"model {spec.model!r} failed while {phase} ({at}): {type(exc).__name__}{first}"
        ) from exc


def check_computes(spec: ModelSpec, report: MemoryReport) -> MemoryReport:
    """A model whose forward writes no tensor (``torch.nn:Identity``) has nothing to report."""
    if not report.curve:
        raise ModelRunError(
            f"model {spec.model!r} computes nothing from its input: its forward pass runs no "
            "operation that writes a tensor (it returns the input, or a view of it), so there "
            "is no activation memory to report"
        )
    return report
