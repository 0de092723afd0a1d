"""The document of `mbprof bench --layers`: the bench facts, then one row per layer (where
the time goes, against where the MAdds are), the "(outside any layer)" row last."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbprof.core.records import BenchResult, LayerProfile
from mbprof.render.document import Document, Table

if TYPE_CHECKING:
    import pandas as pd

HEADERS = {
    "path": "Module",
    "type": "Type",
    "kernel": "Kernel",
    "stride": "Stride",
    "groups": "Groups",
    "output_shape": "Output",
    "madds": "MAdds",
    "kind": "Kind",
    "geometry": "Kernel/stride/groups",
}
KINDS = {
    "path": "text",
    "type": "text",
    "kernel": "text",
    "stride": "text",
    "groups": "int",
    "output_shape": "text",
    "madds": "int",
    "kind": "text",
    "ops": "int",
    "geometry": "text",
}


def _pair(values: tuple[int, ...] | None) -> str | None:
    return None if values is None else "x".join(str(v) for v in values)


def _geometry(row) -> str | None:
    """'3x3 s2 g48': kernel, stride (when not 1) and groups (when not 1), for terminals."""
    if row.kernel is None:
        return None
    text = _pair(row.kernel)
    if row.stride and max(row.stride) > 1:
        text += " s" + (str(row.stride[0]) if len(set(row.stride)) == 1 else _pair(row.stride))
    if row.groups and row.groups > 1:
        text += f" g{row.groups}"
    return text


def layers_frame(profile: LayerProfile) -> pd.DataFrame:
    """One row per layer, numbers raw (the columns of ``mbprof.frame.columns``)."""
    import pandas as pd

    rows = [
        {
            "path": r.path,
            "type": r.type,
            "kind": r.kind,
            "kernel": _pair(r.kernel),
            "stride": _pair(r.stride),
            "groups": r.groups,
            "geometry": _geometry(r),
            "output_shape": _pair(r.out_shape),
            "layer_time_ms": r.time_ms,
            "time_share_pct": r.time_share_pct,
            "madds": r.madds,
            "madds_share_pct": r.madds_share_pct,
            "bytes_moved": r.bytes_moved,
            "intensity": r.intensity,
            "layer_gflops": r.gflops,
            "layer_gbs": r.gbs,
            "bound": r.bound or None,
            "roof_pct": r.roof_pct,
            "mapped": r.mapped,
            "ops": r.ops,
        }
        for r in profile.rows
    ]
    frame = pd.DataFrame(rows)
    return frame.astype({"groups": "Int64"})  # an integer column, empty where none


def layers_table(profile: LayerProfile) -> Table:
    frame = layers_frame(profile)
    # Terminals get the geometry in one column; CSV/JSON keep every figure apart.
    hidden = ["kind", "ops", "kernel", "stride", "groups", "madds", "bytes_moved"]
    if frame["mapped"].all():
        hidden.append("mapped")  # a column only when some op could not be mapped
    return Table(
        name="layers",
        frame=frame,
        title=f"Per layer ({profile.backend}), slowest first",
        headers=HEADERS,
        kinds=KINDS,
        hidden_in_text=tuple(hidden),
        secondary=("geometry", "output_shape", "type", "mapped", "bound", "layer_gbs"),
    )


def layers_document(result: BenchResult) -> Document:
    """The bench document with the per-layer table first (so that CSV writes the layers)."""
    from mbprof.render.latency_view import bench_document

    doc = bench_document(result)
    if result.layers is None:
        return doc
    doc.title = f"{result.spec.label}: latency and where it goes, per layer"
    doc.tables.insert(0, layers_table(result.layers))
    doc.notes += list(result.layers.notes)
    doc.meta["layers"] = {
        "backend": result.layers.backend,
        "passes": result.layers.passes,
        "profiled_ms": result.layers.profiled_ms,
        "latency_ms": result.layers.latency_ms,
        "overhead_pct": result.layers.overhead_pct,
        "compute_gflops": result.layers.compute_gflops,
        "bandwidth_gbs": result.layers.bandwidth_gbs,
        "ridge_flop_per_byte": result.layers.ridge,
    }
    return doc
