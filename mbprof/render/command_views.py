"""The documents of the small commands: `models` (made without pandas, as instant as
``--help``), `cost`, `cache info` / `cache clear` and `reproduce`. Records are read by
attribute: render imports neither the API nor the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbprof.render.document import Document, Fact, Rows, Table, data_frame

if TYPE_CHECKING:
    from mbprof.analysis.layer_cost import ConvCost
    from mbprof.models import ModelInfo


COLUMNS = ("name", "family", "width", "depth", "resolution", "classes", "summary", "reference")


def models_document(infos: Sequence[ModelInfo]) -> Document:
    rows = []
    for i in infos:
        depth = "yes" if i.has_depth else "1.0 only"
        cells = (i.name, i.family, i.width_range, depth, f">= {i.min_resolution}", ">= 1")
        rows.append(dict(zip(COLUMNS, (*cells, i.summary, i.reference), strict=True)))
    headers, kinds = {key: key.capitalize() for key in COLUMNS}, dict.fromkeys(COLUMNS, "text")
    secondary = ("classes", "depth", "resolution", "width", "family")
    frame = Rows(rows, list(COLUMNS))
    table = Table("models", frame, "", headers, kinds, ("reference",), secondary)
    return Document("Registered models", tables=[table], kind="models")


def cost_document(cost: ConvCost) -> Document:
    k, c, f = cost.kernel, cost.in_channels, cost.filters
    oh, ow = cost.out_hw
    px = f"{oh}*{ow}"
    rows = [
        ("standard", f"{k}x{k}", f"{c} -> {f}", cost.standard, cost.standard_params,
         f"{k}*{k}*{c}*{f}*{px}"),
        ("depthwise", f"{k}x{k}", f"{c} -> {c}", cost.depthwise, cost.depthwise_params,
         f"{k}*{k}*{c}*{px}"),
        ("pointwise", "1x1", f"{c} -> {f}", cost.pointwise, cost.pointwise_params, f"{c}*{f}*{px}"),
        ("separable (depthwise + pointwise)", "", f"{c} -> {f}", cost.separable,
         cost.depthwise_params + cost.pointwise_params, f"{k}*{k}*{c}*{px} + {c}*{f}*{px}"),
    ]  # fmt: skip
    keys = "layer kernel channels multiplications weights formula".split()
    padding = cost.padding if not cost.padding.isdigit() else f"{cost.padding} px each side"
    facts = [
        ("input", "Input", f"{cost.in_h}x{cost.in_w}x{c}", "text", "height x width x channels"),
        ("output", "Output", f"{oh}x{ow}x{f}", "text",
         f"kernel {k}x{k}, stride {cost.stride}, padding {padding}"),
        ("standard", "Standard conv", cost.standard, "int", "multiplications"),
        ("separable", "Depthwise-separable", cost.separable, "int", "multiplications"),
        ("ratio", "Standard / separable", cost.ratio, "rate",
         f"times fewer multiplications: 1 / (1/{f} + 1/{k * k}) = {cost.ratio:.3f}"),
    ]  # fmt: skip
    notes = [
        "Multiplications for one image, weights only (no bias, batch norm or activation); "
        "one multiply-accumulate counts once, as MAdds do.",
        "In the separable layer the stride is the depthwise convolution's; both halves "
        "produce the same output size, so the ratio does not depend on it.",
    ]
    secondary = ("kernel", "channels", "weights")
    headers, kinds = {"channels": "In -> out"}, {"channels": "text"}  # not the Ch column
    table = Table("layers", data_frame(rows, keys), "", headers, kinds, (), secondary)
    title = "One convolution layer: standard against depthwise-separable"
    return Document(title, [Fact(*f) for f in facts], [table], notes, kind="cost")


def cache_document(info: Any, cleared: bool = False) -> Document:
    """``info``: an ``mbprof.api.cache.CacheInfo`` (read by attribute)."""
    count = "removed" if cleared else "entries"
    frame = data_frame([{"folder": str(info.folder), count: info.entries, "bytes": info.bytes}])
    title = "Result cache cleared" if cleared else "Result cache"
    notes = [
        "One entry per configuration and settings: counts and memory (and latency, with "
        "compare --cache-latency), keyed by everything that can change them, versions "
        "included. Set MBPROF_CACHE_DIR to keep it elsewhere; compare --no-cache skips it."
    ]
    if cleared:
        notes.append("Only mbprof's result entries are removed; nothing else in the folder.")
    return Document(title, [], [Table("cache", frame)], notes, kind="cache")


def reproduce_document(result: Any) -> Document:
    """``result``: an ``mbprof.report.folder.ReproduceResult`` (read by attribute)."""
    files = [{"file": str(result.out / path), "holds": what} for path, what in result.files]
    table = Table("files", data_frame(files))
    facts = [Fact("out", "Folder", str(result.out), "text")]
    notes = [f"Left out: {item}." for item in result.left_out]
    return Document("mbprof reproduce", facts, [table], notes, kind="reproduce")
