"""A configuration's time per layer, measured on the backend it is timed with: eager
(torch.profiler, ``layers``), ONNX Runtime (its own profile, ``layers_onnx``) or ExecuTorch
(its ETDump, ``executorch_layers``), joined to the counted layers and the machine's two
ceilings (``roofline``)."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from mbprof.analysis.latency.backends import prepare
from mbprof.analysis.latency.layers import discover, profile_eager
from mbprof.analysis.latency.machine import machine_bandwidth_gbs, machine_peak_gflops
from mbprof.analysis.latency.roofline import finish, kind_shares
from mbprof.core.errors import MbprofError
from mbprof.core.records import CountReport, LayerProfile
from mbprof.core.settings import ResolvedLatency

LAYER_BACKENDS = ("eager", "onnxruntime", "executorch")
MIN_PASSES, MAX_PASSES = 10, 50
# XNNPACK's operator times come in whole microseconds: a layer under 20 of them is timed
# too coarsely (5% and worse) for its rate to raise the compute ceiling.
RESOLUTION_MS = {"executorch": 0.02}
OVERHEAD_LIMIT_PCT = 10.0
OUTSIDE_LIMIT_PCT = 30.0  # of the profiled pass outside any layer: said in a note


def check_layer_backend(backend: str) -> None:
    """Refuse a backend whose time cannot be split per layer (torch.compile's fused
    kernels belong to no module), naming the ones that can be."""
    if backend not in LAYER_BACKENDS:
        raise MbprofError(
            f"backend {backend} cannot be profiled per layer (its compiled kernels belong to "
            f"no module); per-layer times come from {', '.join(LAYER_BACKENDS[:-1])} or "
            f"{LAYER_BACKENDS[-1]}",
            field="backend",
        )


def passes_for(settings: ResolvedLatency, latency_ms: float) -> int:
    """Profiled passes: as many as ``min_time_s`` holds, within MIN_PASSES..MAX_PASSES."""
    wanted = math.ceil(settings.min_time_s / max(latency_ms * 1e-3, 1e-6))
    return max(MIN_PASSES, min(MAX_PASSES, wanted))


def profile_layers(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: ResolvedLatency,
    latency_ms: float,
    counts: CountReport,
) -> LayerProfile:
    """Per-layer time of ``model`` prepared as ``settings`` times it (dtype, layout, batch
    norm folded or not, ONNX export), on an input of ``input_shape``; ``latency_ms`` is its
    latency measured the usual way (the profiler's overhead is said against it) and
    ``counts`` its counted layers (MAdds per image, geometry)."""
    check_layer_backend(settings.backend)
    previous = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            torch.set_num_threads(settings.threads)
            prepared = prepare(model, input_shape, settings, stack)
            passes = passes_for(settings, latency_ms)
            if settings.backend == "eager":
                raw = profile_eager(
                    prepared.module, prepared.example, passes, cuda=settings.device == "cuda"
                )
                how = f"torch.profiler, {passes} passes, each module's own ops"
            elif settings.backend == "executorch":
                from mbprof.analysis.latency.executorch_layers import layer_profile, raw_profile

                found = layer_profile(
                    prepared.module, input_shape, settings, runs=passes, lowered=prepared.program
                )
                raw = raw_profile(found, prepared.module, prepared.example, settings.quantize)
                how = (
                    f"ExecuTorch's ETDump, {passes} runs, XNNPACK's own time for each of its "
                    "operators (1 us resolution: layers under 20 us leave the compute ceiling "
                    "as it is), matched to the graph's nodes in order"
                )
            else:
                from mbprof.analysis.latency.layers_onnx import profile_onnx

                feed = {"input": prepared.example.numpy()}
                raw = profile_onnx(
                    prepared.onnx_path, feed, settings.threads, passes, prepared.module
                )
                shapes = discover(prepared.module, prepared.example)[1]
                for row in raw.rows:
                    row.out_shape = shapes.get("" if row.path == "(model)" else row.path)
                how = f"ONNX Runtime's own profile, {passes} runs, each node's kernel time"
    finally:
        torch.set_num_threads(previous)
    # A layer faster than the cached reference: the reference was measured on a busy
    # machine; it is measured again (the cache keeps the best), and never left below.
    madds = {row.path: row.madds for row in counts.layers}
    fastest = max(
        (
            2 * madds[r.path] * settings.batch / (r.time_ms * 1e-3) / 1e9
            for r in raw.rows
            if madds.get(r.path) and r.time_ms > RESOLUTION_MS.get(settings.backend, 0.0)
        ),
        default=None,
    )
    compute = machine_peak_gflops(
        settings.device, settings.threads, settings.dtype, at_least=fastest
    )
    bandwidth = machine_bandwidth_gbs(settings.device, settings.threads)
    profile = finish(
        raw,
        counts.layers,
        backend=settings.backend,
        batch=settings.batch,
        dtype=settings.dtype,
        latency_ms=latency_ms,
        compute_gflops=compute,
        bandwidth_gbs=bandwidth,
        resolution_ms=RESOLUTION_MS.get(settings.backend, 0.0),
    )
    return _with_notes(profile, how)


def _with_notes(profile: LayerProfile, how: str) -> LayerProfile:
    from dataclasses import replace

    overhead = profile.overhead_pct
    notes = [
        f"Per layer ({how}): the median over passes of a layer's time; the rows and "
        f"'(outside any layer)' (the rest of the median profiled pass: Python between the "
        f"ops, hooks, the profiler's bookkeeping) sum to {profile.profiled_ms:.2f} ms.",
        f"The profiler's own overhead: a profiled pass took {profile.profiled_ms:.2f} ms, "
        f"{overhead:+.0f}% against {profile.latency_ms:.2f} ms timed the usual way"
        + (
            f"; above {OVERHEAD_LIMIT_PCT:.0f}%, so the shares of small layers are inflated."
            if overhead > OVERHEAD_LIMIT_PCT
            else f"; faster by more than {OVERHEAD_LIMIT_PCT:.0f}%: the plain timing was "
            "slowed (a busy machine?), read the layers' shares rather than their milliseconds."
            if overhead < -OVERHEAD_LIMIT_PCT
            else "."
        ),
        f"Ceilings: compute {profile.compute_gflops:.1f} GFLOP/s (the best matrix product, "
        f"{profile.dtype}), memory {profile.bandwidth_gbs:.1f} GB/s (a large streaming copy); "
        f"the ridge point is {profile.ridge:.1f} FLOP/B: a layer left of it is bound by "
        "memory traffic. Layers above the memory ceiling ran from the caches.",
    ]
    shares = kind_shares(profile)
    parts = [
        f"{kind} ({n} layer{'s' if n != 1 else ''}): {time:.1f}% of the time, {madds:.1f}% of the MAdds"
        for kind, (n, time, madds) in sorted(shares.items(), key=lambda kv: -kv[1][1])
    ]
    if parts:
        notes.append("By kind: " + "; ".join(parts) + ".")
    outside = profile.rows[-1].time_share_pct if profile.rows else 0.0  # the last row
    if outside > OUTSIDE_LIMIT_PCT:
        notes.append(
            f"{outside:.0f}% of the profiled pass is outside any layer (Python between the "
            "ops, the profiler's bookkeeping, or other processes on a busy machine: then try "
            "--threads 1 or a quiet machine); the layers' shares are of the whole pass."
        )
    unmapped = sum(1 for row in profile.rows if not row.mapped)
    if unmapped:
        notes.append(
            f"{unmapped} ops could not be mapped to a module (no module scope recorded, "
            "or a TorchScript module): each has its own row, marked unmapped."
        )
    return replace(profile, notes=(*profile.notes, *notes))
