"""The per-layer table finished: each layer's MAdds and geometry joined by module path, its
derived figures (shares, arithmetic intensity, achieved rates, the ceiling it is under)
and the two ceilings of the machine reference.

The roofline: at an arithmetic intensity I (FLOPs per byte moved) a layer can run at most
min(compute, I x bandwidth) GFLOP/s. Left of the ridge point (compute / bandwidth) the
memory ceiling bounds it ("memory"), right of it the compute ceiling ("compute"); its
"roof %" is its achieved rate as a share of that bound. FLOPs are 2 x MAdds x batch (the
counting convention: convolutions and fully connected layers only), so a layer with no
MAdds (batch norm, an activation, an addition) has no intensity and is bound by memory
traffic alone. The compute ceiling is never below the rate any layer achieved (a layer
that beat the matrix-product reference shows the reference was measured low).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mbprof.analysis.latency.layers import OUTSIDE, RawLayer, RawProfile
from mbprof.core.records import LayerProfile, LayerRow, LayerTime

MEMORY, COMPUTE = "memory", "compute"


def layer_kind(module_type: str, counted: LayerRow | None) -> str:
    """depthwise conv, pointwise conv, conv, fully connected or other: the groups a mobile
    network's time is read by (from the counted layer's geometry)."""
    if module_type.startswith("Conv") and counted is not None:
        if counted.groups and counted.groups > 1 and counted.groups == counted.in_channels:
            return "depthwise conv"
        if counted.kernel == (1, 1) and (counted.groups or 1) == 1:
            return "pointwise conv"
        return "conv"
    if module_type == "Linear":
        return "fully connected"
    return "other"


def _geometry(row: LayerRow | None) -> dict:
    if row is None:
        return {}
    return {"kernel": row.kernel, "stride": row.stride, "groups": row.groups}


def finish(
    raw: RawProfile,
    counted: Iterable[LayerRow],
    *,
    backend: str,
    batch: int,
    dtype: str,
    latency_ms: float,
    compute_gflops: float,
    bandwidth_gbs: float,
    geometry: Mapping[str, LayerRow] | None = None,
    notes: Iterable[str] = (),
    resolution_ms: float = 0.0,
) -> LayerProfile:
    """The ``LayerProfile`` of a raw profile: rows joined to the counted layers by path
    (MAdds per image; kernel, stride, groups from ``geometry`` or the counted rows), the
    "(outside any layer)" row last, every derived figure, the ceilings. A layer that ran
    faster than the compute ceiling raises it, unless its time is within
    ``resolution_ms`` (times that coarse say nothing of its rate)."""
    by_path = {row.path: row for row in counted}
    geometry = geometry or by_path
    rows: list[RawLayer] = sorted(raw.rows, key=lambda r: -r.time_ms)
    inside = sum(r.time_ms for r in rows)
    outside = max(0.0, raw.profiled_ms - inside)
    total = inside + outside
    madds_total = sum(r.madds for r in by_path.values()) or 1
    achieved = [
        2 * by_path[r.path].madds * batch / (r.time_ms * 1e-3) / 1e9
        for r in rows
        if r.path in by_path and r.time_ms > resolution_ms and by_path[r.path].madds
    ]
    compute = max([compute_gflops, *achieved])
    notes = list(notes)
    if compute > compute_gflops:
        notes.append(
            f"a layer ran at {compute:.1f} GFLOP/s, above the matrix-product reference "
            f"({compute_gflops:.1f} GFLOP/s, measured on a busy machine): the compute ceiling "
            "is raised to it"
        )
    ridge = compute / bandwidth_gbs
    finished = []
    for r in rows:
        madds = by_path[r.path].madds if r.mapped and r.path in by_path else 0
        seconds = r.time_ms * 1e-3
        flops = 2 * madds * batch
        intensity = flops / r.bytes_moved if madds and r.bytes_moved else None
        gflops = flops / seconds / 1e9 if seconds > 0 and flops else None
        gbs = r.bytes_moved / seconds / 1e9 if seconds > 0 and r.bytes_moved else None
        bound, roof = "", None
        if intensity is not None and gflops is not None:
            bound = MEMORY if intensity < ridge else COMPUTE
            roof = 100.0 * gflops / min(compute, intensity * bandwidth_gbs)
        elif gbs is not None:
            bound, roof = MEMORY, 100.0 * gbs / bandwidth_gbs
        finished.append(
            LayerTime(
                path=r.path,
                type=r.type,
                time_ms=r.time_ms,
                madds=madds,
                bytes_moved=r.bytes_moved,
                mapped=r.mapped,
                out_shape=r.out_shape,
                ops=r.ops,
                time_share_pct=100.0 * r.time_ms / total if total else 0.0,
                madds_share_pct=100.0 * madds / madds_total,
                intensity=intensity,
                gflops=gflops,
                gbs=gbs,
                bound=bound,
                roof_pct=roof,
                kind=layer_kind(r.type, by_path.get(r.path)) if r.mapped else "unmapped",
                **_geometry(geometry.get(r.path)),
            )
        )
    finished.append(
        LayerTime(
            path=OUTSIDE,
            type="",
            kind="outside",
            time_ms=outside,
            time_share_pct=100.0 * outside / total if total else 0.0,
        )
    )
    return LayerProfile(
        backend=backend,
        batch=batch,
        dtype=dtype,
        rows=tuple(finished),
        profiled_ms=total,
        latency_ms=latency_ms,
        passes=len(raw.walls_ms),
        compute_gflops=compute,
        bandwidth_gbs=bandwidth_gbs,
        notes=tuple(notes),
    )


def kind_shares(profile: LayerProfile) -> dict[str, tuple[int, float, float]]:
    """Per layer kind (``layer_kind``): (layers, share of time %, share of MAdds %)."""
    shares: dict[str, list[float]] = {}
    for row in profile.rows:
        if row.path == OUTSIDE:
            continue
        entry = shares.setdefault(row.kind or "other", [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += row.time_share_pct
        entry[2] += row.madds_share_pct
    return {kind: (int(n), time, madds) for kind, (n, time, madds) in shares.items()}
