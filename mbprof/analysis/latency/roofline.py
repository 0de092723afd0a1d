"""Where a configuration's time goes, layer by layer, joined to the counted layers and ceilings."""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import replace

from torch import nn

from mbprof.analysis.latency.harness import prepare
from mbprof.analysis.latency.machine import (
    machine_bandwidth_gbs,
    machine_peak_gflops,
    with_threads,
)
from mbprof.analysis.latency.runtimes import OUTSIDE, RawLayer, RawProfile
from mbprof.core.errors import MbprofError
from mbprof.core.records import CountReport, LayerProfile, LayerRow, LayerTime
from mbprof.core.settings import LAYER_BACKENDS, ResolvedLatency, spoken

MEMORY, COMPUTE = "memory", "compute"
MIN_PASSES, MAX_PASSES = 10, 50
OVERHEAD_LIMIT_PCT = 10.0
OUTSIDE_LIMIT_PCT = 30.0  # of the profiled pass outside any layer: said in a note
RAW_FIELDS = "path type time_ms bytes_moved mapped out_shape ops".split()  # as they are


def layer_kind(module_type: str, counted: LayerRow | None) -> str:
    """The layer kind a mobile network's time is read by, from the counted geometry."""
    if module_type.startswith("Conv") and counted is not None:
        if counted.groups and counted.groups > 1 and counted.groups == counted.in_channels:
            return "depthwise conv"
        if counted.kernel == (1, 1) and (counted.groups or 1) == 1:
            return "pointwise conv"
        return "conv"
    return "fully connected" if module_type == "Linear" else "other"


def achieved(raw: RawProfile, madds: Mapping[str, int], batch: int) -> list[float]:
    """The GFLOP/s of each layer with MAdds timed above the profile's resolution."""
    return [
        2 * madds[r.path] * batch / (r.time_ms * 1e-3) / 1e9
        for r in raw.rows
        if madds.get(r.path) and r.time_ms > raw.resolution_ms
    ]


def finish(
    raw: RawProfile,
    counted: Iterable[LayerRow],
    settings: ResolvedLatency,
    latency_ms: float,
    compute_gflops: float,
    bandwidth_gbs: float,
) -> LayerProfile:
    """The ``LayerProfile`` of a raw profile joined to the counted layers; may raise the ceiling."""
    batch = settings.batch
    by_path = {row.path: row for row in counted}
    rows: list[RawLayer] = sorted(raw.rows, key=lambda r: -r.time_ms)
    inside = sum(r.time_ms for r in rows)
    outside = max(0.0, statistics.median(raw.walls_ms) - inside)  # of the median profiled pass
    total = inside + outside
    madds_total = sum(r.madds for r in by_path.values()) or 1
    rates = achieved(raw, {path: row.madds for path, row in by_path.items()}, batch)
    compute = max([compute_gflops, *rates])
    notes = []
    if compute > compute_gflops:
        notes.append(
            f"a layer ran at {compute:.1f} GFLOP/s, above the matrix-product reference "
            f"({compute_gflops:.1f} GFLOP/s, measured on a busy machine): the compute ceiling "
            "is raised to it"
        )
    finished = []
    for r in rows:
        c = by_path.get(r.path)
        madds = c.madds if r.mapped and c is not None else 0
        geometry = {"kernel": c.kernel, "stride": c.stride, "groups": c.groups} if c else {}
        seconds = r.time_ms * 1e-3
        flops = 2 * madds * batch
        intensity = flops / r.bytes_moved if madds and r.bytes_moved else None
        gflops = flops / seconds / 1e9 if seconds > 0 and flops else None
        gbs = r.bytes_moved / seconds / 1e9 if seconds > 0 and r.bytes_moved else None
        bound, roof = "", None
        if intensity is not None and gflops is not None:
            bound = MEMORY if intensity < compute / bandwidth_gbs else COMPUTE  # the ridge
            roof = 100.0 * gflops / min(compute, intensity * bandwidth_gbs)
        elif gbs is not None:
            bound, roof = MEMORY, 100.0 * gbs / bandwidth_gbs
        finished.append(
            LayerTime(
                **{name: getattr(r, name) for name in RAW_FIELDS},
                madds=madds,
                time_share_pct=100.0 * r.time_ms / total if total else 0.0,
                madds_share_pct=100.0 * madds / madds_total,
                intensity=intensity,
                gflops=gflops,
                gbs=gbs,
                bound=bound,
                roof_pct=roof,
                kind=layer_kind(r.type, c) if r.mapped else "unmapped",
                **geometry,
            )
        )
    share = 100.0 * outside / total if total else 0.0
    finished.append(LayerTime(OUTSIDE, "", outside, time_share_pct=share, kind="outside"))
    return LayerProfile(
        backend=settings.backend,
        batch=batch,
        dtype=settings.dtype,
        rows=tuple(finished),
        profiled_ms=total,
        latency_ms=latency_ms,
        passes=len(raw.walls_ms),
        compute_gflops=compute,
        bandwidth_gbs=bandwidth_gbs,
        notes=tuple(notes),
    )


def check_layer_backend(backend: str) -> None:
    if backend not in LAYER_BACKENDS:
        raise MbprofError(
            f"backend {backend} cannot be profiled per layer (its compiled kernels belong to "
            f"no module); per-layer times come from {spoken(LAYER_BACKENDS)}",
            field="backend",
        )


def profile_layers(
    model: nn.Module,
    input_shape: tuple[int, ...],
    settings: ResolvedLatency,
    latency_ms: float,
    counts: CountReport,
) -> LayerProfile:
    """Per-layer time of ``model`` prepared as ``settings`` times it."""
    check_layer_backend(settings.backend)
    wanted = math.ceil(settings.min_time_s / max(latency_ms * 1e-3, 1e-6))
    passes = max(MIN_PASSES, min(MAX_PASSES, wanted))
    with with_threads(settings.threads), contextlib.ExitStack() as stack:
        prepared = prepare(model, input_shape, settings, stack)
        raw, how = prepared.layers(passes), prepared.how.format(passes=passes)
    # A layer faster than the cached reference: the reference was measured on a busy
    # machine; it is measured again (the cache keeps the best), and never left below.
    madds = {row.path: row.madds for row in counts.layers}
    fastest = max(achieved(raw, madds, settings.batch), default=None)
    device, threads = settings.device, settings.threads
    compute = machine_peak_gflops(device, threads, settings.dtype, at_least=fastest)
    bandwidth = machine_bandwidth_gbs(device, threads)
    profile = finish(raw, counts.layers, settings, latency_ms, compute, bandwidth)
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
    shares: dict[str, list] = {}  # kind -> [layers, share of time %, share of MAdds %]
    for row in profile.rows[:-1]:  # the last row is outside any layer
        entry = shares.setdefault(row.kind or "other", [0, 0.0, 0.0])
        for n, value in enumerate((1, row.time_share_pct, row.madds_share_pct)):
            entry[n] += value
    parts = [
        f"{kind} ({n} layer{'s' if n != 1 else ''}): {time:.1f}% of the time, {madds:.1f}% of the MAdds"
        for kind, (n, time, madds) in sorted(shares.items(), key=lambda kv: -kv[1][1])
    ]
    if parts:
        notes.append("By kind: " + "; ".join(parts) + ".")
    outside = profile.rows[-1].time_share_pct
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
