"""What each column of a comparison frame means: its header, its unit, its convention.

This is the one place a column is described; the renderers read it for headers and
number formats, and ``compare --json`` writes the descriptions beside the rows.
Kinds: text, float, int (exact, with thousands separators), millions (x 1e6, two
decimals), bytes (decimal KB/MB), ms, percent, rate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    header: str
    kind: str
    description: str


COLUMNS: dict[str, Column] = {
    "model": Column("Model", "text", "registered model name or import path"),
    "width": Column("Width", "float", "width multiplier"),
    "depth": Column("Depth", "float", "depth multiplier (1.0 where the model has none)"),
    "resolution": Column("Res", "text", "input resolution, HxW when not square"),
    "input_h": Column("H", "int", "input height in pixels"),
    "input_w": Column("W", "int", "input width in pixels"),
    "num_classes": Column("Classes", "int", "classifier outputs"),
    "args": Column("Args", "text", "extra builder keyword arguments"),
    "madds": Column(
        "MAdds (M)",
        "millions",
        "multiply-accumulates of convolutions and fully connected layers, batch 1 "
        "(the papers' convention; fvcore conv/linear/matmul handles)",
    ),
    "params": Column(
        "Params (M)",
        "millions",
        "elements of all parameter tensors: weights, biases, batch-norm affine",
    ),
    "other_flops": Column(
        "Other (M)",
        "millions",
        "fvcore's element-wise estimates for batch norm, pooling, upsampling and "
        "normalisation, batch 1; not part of MAdds",
    ),
    "top1": Column(
        "Top-1 (%)",
        "float",
        "published ImageNet top-1 accuracy, single crop (not measured here; source in "
        "accuracy_source)",
    ),
    "top5": Column("Top-5 (%)", "float", "published ImageNet top-5 accuracy, same source as top1"),
    "accuracy_source": Column(
        "Accuracy source", "text", "where top1, top5 and phone_latency_ms come from"
    ),
    "phone_latency_ms": Column(
        "Phone (ms)",
        "ms",
        "latency published by accuracy_source, measured on the phone in phone_latency_device "
        "(not measured here)",
    ),
    "phone_latency_device": Column(
        "Phone", "text", "phone, runtime and precision of phone_latency_ms"
    ),
    "error": Column("Error", "text", "why this configuration has no figures"),
}


def column(key: str) -> Column:
    """The description of ``key``; an undescribed column renders as its own name."""
    return COLUMNS.get(key, Column(key, "auto", ""))
