"""Two results side by side (``mbprof diff``): each side becomes the JSON document its
command writes; layers matched by path, then by type sequence; latency deltas judged
against half of each side's p10-p90 spread (docs/cli.md)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.inputs import make_spec
from mbprof.api.single import profile_spec
from mbprof.core.errors import MbprofError
from mbprof.core.records import BenchResult, ModelSpec, Profile
from mbprof.core.settings import MEM_DTYPE_BYTES
from mbprof.core.units import format_value
from mbprof.frame.columns import ENVIRONMENT_COLUMNS
from mbprof.frame.rows import read_frame
from mbprof.render.document import frame_records, to_payload
from mbprof.render.latency_view import layers_document
from mbprof.render.profile_view import profile_document

if TYPE_CHECKING:
    import pandas as pd

# What two results must share to be compared as alike; a difference is warned about.
SETTINGS = (*ENVIRONMENT_COLUMNS, "mem_dtype", "mem_chunks", "engine")
TOTALS = (
    "params",
    "madds",
    "other_flops",
    "peak_act_bytes",
    "peak_act_bytes_efficient",
    "max_tensor_bytes",
    "latency_ms",
    "profiled_ms",
)
LAYER_FIGURES = ("params", "madds", "other_flops", "out_elements", "out_bytes", "layer_time_ms")
MEMORY_FIGURES = ("tensor_bytes", "op_bytes", "tensor_bytes_efficient", "op_bytes_efficient")
TOTAL_COLUMNS = ["figure", "before", "after", "delta", "delta_pct", "noise_ms", "verdict"]
TIMES = ("latency_ms", "profiled_ms", "layer_time_ms")


@dataclass(frozen=True)
class Side:
    """One side as read from its document."""

    label: str
    totals: dict[str, float]
    settings: dict[str, Any]
    layers: list[dict[str, Any]] = field(default_factory=list)
    memory: list[dict[str, Any]] = field(default_factory=list)
    spread: float | None = None  # (p90 - p10) / median of its latency


@dataclass(frozen=True)
class DiffResult:
    """``after`` minus ``before``: ``totals`` (one row a figure), ``layers`` (one row a
    matched pair, ``match`` saying how: path, structure, before only, after only) and
    ``memory`` (one row a spatial size), with ``warnings`` on settings that differ."""

    before: Side
    after: Side
    totals: pd.DataFrame
    layers: pd.DataFrame
    memory: pd.DataFrame
    warnings: tuple[str, ...] = ()

    def to_dataframe(self) -> pd.DataFrame:
        return self.layers.copy()

    def _repr_html_(self) -> str:
        from mbprof.render.compare_view import diff_document
        from mbprof.render.html import to_html

        return to_html(diff_document(self), whole=False)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _elements(text: Any) -> int:
    try:
        return math.prod(int(v) for v in str(text).split("x")) if text else 0
    except ValueError:
        return 0


def _layer(row: dict[str, Any], dtype_bytes: int) -> dict[str, Any]:
    if "output_shape" in row:  # bench --layers: the whole output, batch included
        out = _elements(row.get("output_shape"))
    else:  # profile: channels x H x W of one image
        out = (row.get("out_channels") or 0) * _elements(row.get("output_hw"))
    layer = {"path": str(row.get("path")), "type": str(row.get("type"))}
    layer |= {k: _number(row[k]) or 0 for k in LAYER_FIGURES if k in row}
    return layer | {"out_elements": out, "out_bytes": out * dtype_bytes}


def read_side(payload: dict[str, Any], where: str) -> Side:
    """A side from an mbprof JSON document."""
    tables = payload.get("tables") if isinstance(payload, dict) else None
    if not isinstance(tables, dict) or not tables:
        raise MbprofError(f"{where} is not an mbprof JSON result (no 'tables')")
    if payload.get("kind", "profile") not in ("profile", "compare", "bench"):
        raise MbprofError(
            f"{where} is a {payload['kind']} result; diff reads profile, compare and bench results"
        )
    facts = payload.get("facts") or {}
    rows = tables.get("latency") or ([] if "layers" in tables else next(iter(tables.values())))
    if len(rows) > 1:
        raise MbprofError(
            f"{where} holds {len(rows)} configurations; diff takes one a side "
            "(write each with its own compare --json)"
        )
    row = {**facts, **(rows[0] if rows else {})}
    row["mem_dtype"] = str(row.get("mem_dtype") or "").split(",")[0] or None
    settings = {k: row[k] for k in SETTINGS if row.get(k) is not None}
    dtype = settings.get("dtype") if "latency" in tables else settings.get("mem_dtype")
    dtype_bytes = MEM_DTYPE_BYTES.get(str(dtype), 4)
    totals = {k: row[k] for k in TOTALS if _number(row.get(k)) is not None}
    if isinstance(payload.get("layers"), dict):  # bench --layers: the profiled pass
        totals["profiled_ms"] = payload["layers"]["profiled_ms"]
    spread = None
    if all(_number(row.get(k)) for k in ("latency_ms", "latency_p10_ms", "latency_p90_ms")):
        spread = (row["latency_p90_ms"] - row["latency_p10_ms"]) / row["latency_ms"]
    if "model" in row and "width" in row:  # a frame row, or profile's facts
        res = str(row.get("resolution", "")).removesuffix("x3")
        res = res.split("x")[0] if len(set(res.split("x"))) == 1 else res
        label = f"{row['model']} {format_value(row['width'], 'float')}@{res}"
    else:
        label = str(row.get("model") or payload.get("title", where)).partition(":")[0]
    return Side(
        label=label,
        totals=totals,
        settings=settings,
        layers=[_layer(r, dtype_bytes) for r in tables.get("layers", [])],
        memory=[
            {"size": r["size"], **{k: r.get(k) for k in MEMORY_FIGURES}}
            for r in tables.get("memory_per_resolution", [])
        ],
        spread=spread,
    )


def is_result_file(side: Any) -> bool:
    """A path to read (no model name ends in .json or .csv)."""
    path = Path(side) if isinstance(side, (str, Path)) else None
    return path is not None and (path.suffix.lower() in (".json", ".csv") or path.is_file())


def load_side(side: Any) -> Side:
    """``side`` (a result file, a model, a ``ModelSpec``, a record, a document) as a ``Side``."""
    if isinstance(side, Side):
        return side
    if isinstance(side, dict):
        return read_side(side, "the document")
    if is_result_file(side):
        path = Path(side)
        where = repr(str(path))
        if path.suffix.lower() == ".csv":
            return read_side({"tables": {"rows": frame_records(read_frame(path))}}, where)
        if not path.is_file():
            raise MbprofError(f"{where} does not exist")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise MbprofError(f"{where} cannot be read as JSON: {exc}") from None
        return read_side(payload, where)
    if isinstance(side, (str, ModelSpec)):  # profiled here
        side = profile_spec(side if isinstance(side, ModelSpec) else make_spec(side))
    if isinstance(side, (Profile, BenchResult)):
        view = profile_document if isinstance(side, Profile) else layers_document
        return read_side(to_payload(view(side)), side.spec.label)
    raise MbprofError(
        f"diff: {side!r} is not a result file, model name, ModelSpec, Profile or BenchResult"
    )


def _match(before: list[dict], after: list[dict]) -> list[tuple[int | None, int | None, str]]:
    where = {row["path"]: j for j, row in enumerate(after)}
    pairs = [(i, where[r["path"]], "path") for i, r in enumerate(before) if r["path"] in where]
    left_b = [i for i in range(len(before)) if i not in {p[0] for p in pairs}]
    left_a = [j for j in range(len(after)) if j not in {p[1] for p in pairs}]
    types = SequenceMatcher(
        None, [before[i]["type"] for i in left_b], [after[j]["type"] for j in left_a], False
    )
    for a, b, n in types.get_matching_blocks():
        pairs += [(left_b[a + k], left_a[b + k], "structure") for k in range(n)]
    paired_b, paired_a = {p[0] for p in pairs}, {p[1] for p in pairs}
    pairs += [(i, None, "before only") for i in range(len(before)) if i not in paired_b]
    pairs += [(None, j, "after only") for j in range(len(after)) if j not in paired_a]

    def order(pair: tuple[int | None, int | None, str]) -> tuple[float, int]:
        i, j, _ = pair
        if i is not None:
            return (i, 0)
        earlier = [p[0] for p in pairs if p[0] is not None and p[1] is not None and p[1] < j]
        return (max(earlier, default=-1) + 0.5, j)

    return sorted(pairs, key=order)


def _judged(before: Side, after: Side, b: float, a: float) -> tuple[float | None, str | None]:
    """The noise bound of ``a - b`` (half of each side's spread) and the verdict on it."""
    if before.spread is None or after.spread is None:
        return None, None
    noise = b * before.spread / 2 + a * after.spread / 2
    return noise, "within noise" if abs(a - b) <= noise else ("slower" if a > b else "faster")


def _deltas(row: dict, keys: Any, b: dict, a: dict, missing: Any) -> dict[str, Any]:
    for key in keys:
        row[f"{key}_before"], row[f"{key}_after"] = b.get(key, missing), a.get(key, missing)
        row[f"{key}_delta"] = (a.get(key) or 0) - (b.get(key) or 0)
    return row


def diff(before: Any, after: Any) -> DiffResult:
    """``after`` against ``before``, each a result file mbprof wrote (``profile --format
    json``, ``compare --json`` of one configuration, ``bench [--layers] --format json``;
    read as data, never importing code), a registered name or import path, a ``ModelSpec``
    (both profiled here), a ``Profile`` or a ``BenchResult``.

    >>> d = diff(make_spec("mobilenet_v2", resolution=160),
    ...          make_spec("mobilenet_v2", width=0.75, resolution=160))
    >>> d.layers["madds_delta"].sum() == d.after.totals["madds"] - d.before.totals["madds"]
    True
    """
    import pandas as pd

    before, after = load_side(before), load_side(after)
    totals = []
    for key in [k for k in TOTALS if k in before.totals and k in after.totals]:
        b, a = before.totals[key], after.totals[key]
        judged = _judged(before, after, b, a) if key in TIMES else (None, None)
        totals.append((key, b, a, a - b, 100.0 * (a - b) / b if b else None, *judged))
    figures = [
        k for k in LAYER_FIGURES
        if before.layers and after.layers and k in before.layers[0] and k in after.layers[0]
    ]  # fmt: skip
    layers = []
    for i, j, how in _match(before.layers, after.layers):
        b = before.layers[i] if i is not None else {}
        a = after.layers[j] if j is not None else {}
        row = {
            "match": how,
            "path": b.get("path", a.get("path")),
            "after_path": a.get("path") if b.get("path") != a.get("path") else None,
            "type": b.get("type", a.get("type")),
        }
        _deltas(row, figures, b, a, 0)
        if "layer_time_ms" in figures:
            times = (b.get("layer_time_ms", 0), a.get("layer_time_ms", 0))
            row["verdict"] = _judged(before, after, *times)[1]
        layers.append(row)
    sizes = dict.fromkeys([r["size"] for r in before.memory + after.memory])
    b, a = ({r["size"]: r for r in side.memory} for side in (before, after))
    memory = [
        _deltas({"size": size}, MEMORY_FIGURES, b.get(size, {}), a.get(size, {}), None)
        for size in sizes
    ]
    b, a = before.settings, after.settings
    differ = [
        f"{k} ({b[k]} against {a[k]})" for k in SETTINGS if k in b and k in a and b[k] != a[k]
    ]
    warning = (
        f"before and after were not measured alike: {', '.join(differ)}; "
        "their differences mix the change with the settings"
    )
    return DiffResult(
        before=before,
        after=after,
        totals=pd.DataFrame(totals, columns=TOTAL_COLUMNS, dtype=object),  # ints stay ints
        layers=pd.DataFrame(layers),
        memory=pd.DataFrame(memory),
        warnings=(warning,) if differ else (),
    )
