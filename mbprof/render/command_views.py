"""The documents of the small commands: `mbprof models` (the registered architectures and
their knobs, made without pandas, ``Rows``, so that listing names is as instant as
``--help``), `mbprof cost` (one convolution layer, standard against depthwise-separable),
`mbprof cache info` / `cache clear`, and `mbprof reproduce` (what it wrote and what it
left out). The API's and the report's records are read by attribute: render imports
neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mbprof import __version__
from mbprof.render.document import Document, Fact, Rows, Table

if TYPE_CHECKING:
    from mbprof.analysis.layer_cost import ConvCost
    from mbprof.models import ModelInfo


COLUMNS = ("name", "family", "width", "depth", "resolution", "classes", "summary", "reference")


def models_document(infos: Sequence[ModelInfo]) -> Document:
    rows = Rows(
        [
            {
                "name": info.name,
                "family": info.family,
                "width": info.width_range,
                "depth": "yes" if info.has_depth else "1.0 only",
                "resolution": f">= {info.min_resolution}",
                "classes": ">= 1",
                "summary": info.summary,
                "reference": info.reference,
            }
            for info in infos
        ],
        list(COLUMNS),
    )
    return Document(
        kind="models",
        title="Registered models",
        tables=[
            Table(
                name="models",
                frame=rows,
                headers={key: key.capitalize() for key in COLUMNS},
                kinds=dict.fromkeys(COLUMNS, "text"),
                hidden_in_text=("reference",),
                secondary=("classes", "depth", "resolution", "width", "family"),
            )
        ],
        meta={"mbprof_version": __version__},
    )


def cost_document(cost: ConvCost) -> Document:
    import pandas as pd

    k, c, f = cost.kernel, cost.in_channels, cost.filters
    oh, ow = cost.out_hw
    pixels = f"{oh}*{ow}"
    rows = [
        (
            "standard",
            f"{k}x{k}",
            f"{c} -> {f}",
            cost.standard,
            cost.standard_params,
            f"{k}*{k}*{c}*{f}*{pixels}",
        ),
        (
            "depthwise",
            f"{k}x{k}",
            f"{c} -> {c}",
            cost.depthwise,
            cost.depthwise_params,
            f"{k}*{k}*{c}*{pixels}",
        ),
        (
            "pointwise",
            "1x1",
            f"{c} -> {f}",
            cost.pointwise,
            cost.pointwise_params,
            f"{c}*{f}*{pixels}",
        ),
        (
            "separable (depthwise + pointwise)",
            "",
            f"{c} -> {f}",
            cost.separable,
            cost.depthwise_params + cost.pointwise_params,
            f"{k}*{k}*{c}*{pixels} + {c}*{f}*{pixels}",
        ),
    ]
    frame = pd.DataFrame(
        rows, columns=["layer", "kernel", "channels", "multiplications", "weights", "formula"]
    )
    padding = cost.padding if not cost.padding.isdigit() else f"{cost.padding} px each side"
    facts = [
        Fact("input", "Input", f"{cost.in_h}x{cost.in_w}x{c}", "text", "height x width x channels"),
        Fact(
            "output",
            "Output",
            f"{oh}x{ow}x{f}",
            "text",
            f"kernel {k}x{k}, stride {cost.stride}, padding {padding}",
        ),
        Fact("standard", "Standard conv", cost.standard, "int", "multiplications"),
        Fact("separable", "Depthwise-separable", cost.separable, "int", "multiplications"),
        Fact(
            "ratio",
            "Standard / separable",
            cost.ratio,
            "rate",
            f"times fewer multiplications: 1 / (1/{f} + 1/{k * k}) = {cost.ratio:.3f}",
        ),
    ]
    notes = [
        "Multiplications for one image, weights only (no bias, batch norm or activation); "
        "one multiply-accumulate counts once, as MAdds do.",
        "In the separable layer the stride is the depthwise convolution's; both halves "
        "produce the same output size, so the ratio does not depend on it.",
    ]
    return Document(
        kind="cost",
        title="One convolution layer: standard against depthwise-separable",
        facts=facts,
        tables=[
            Table(
                name="layers",
                frame=frame,
                headers={
                    "layer": "Layer",
                    "kernel": "Kernel",
                    "channels": "In -> out",
                    "multiplications": "Multiplications",
                    "weights": "Weights",
                    "formula": "Formula",
                },
                kinds={
                    "layer": "text",
                    "kernel": "text",
                    "channels": "text",
                    "multiplications": "int",
                    "weights": "int",
                    "formula": "text",
                },
                secondary=("kernel", "channels", "weights"),
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )


def cache_document(info: Any, cleared: bool = False) -> Document:
    """``info``: an ``mbprof.api.cache.CacheInfo`` (read by attribute)."""
    import pandas as pd

    count = "removed" if cleared else "entries"
    frame = pd.DataFrame([{"folder": str(info.folder), count: info.entries, "bytes": info.bytes}])
    title = "Result cache cleared" if cleared else "Result cache"
    notes = [
        "One entry per configuration and settings: counts and memory (and latency, with "
        "compare --cache-latency), keyed by everything that can change them, versions "
        "included. Set MBPROF_CACHE_DIR to keep it elsewhere; compare --no-cache skips it."
    ]
    if cleared:
        notes.append("Only mbprof's result entries are removed; nothing else in the folder.")
    return Document(
        kind="cache",
        title=title,
        tables=[
            Table(
                name="cache",
                frame=frame,
                headers={"folder": "Folder", count: count.capitalize(), "bytes": "Size"},
                kinds={"folder": "text", count: "int", "bytes": "bytes"},
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )


def reproduce_document(result: Any) -> Document:
    """``result``: an ``mbprof.report.folder.ReproduceResult`` (read by attribute)."""
    import pandas as pd

    frame = pd.DataFrame(
        [{"file": str(result.out / path), "holds": what} for path, what in result.files]
    )
    notes = [f"Left out: {item}." for item in result.left_out]
    return Document(
        kind="reproduce",
        title="mbprof reproduce",
        facts=[Fact("out", "Folder", str(result.out), "text")],
        tables=[
            Table(
                name="files",
                frame=frame,
                headers={"file": "File", "holds": "What it holds"},
                kinds={"file": "text", "holds": "text"},
            )
        ],
        notes=notes,
        meta={"mbprof_version": __version__},
    )
