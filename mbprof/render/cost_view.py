"""The document that `mbprof cost` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbprof import __version__
from mbprof.render.document import Document, Fact, Table

if TYPE_CHECKING:
    from mbprof.analysis.layer_cost import ConvCost


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
