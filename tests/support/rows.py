"""Rows of a comparison frame written out by hand, as the files of ``mbprof compare`` hold
them: the test's own statement of the columns, independent of mbprof's row writer."""

from __future__ import annotations

from typing import Any

MNV2_MADDS, MNV2_PARAMS = 300_774_272, 3_504_872  # MobileNetV2 1.0@224, published


def config_row(model: str = "mobilenet_v2", **columns: Any) -> dict[str, Any]:
    """The identity columns of ``model`` 1.0@224 with 1000 classes, then ``columns``."""
    return {
        "model": model,
        "width": 1.0,
        "depth": 1.0,
        "resolution": "224",
        "input_h": 224,
        "input_w": 224,
        "num_classes": 1000,
        **columns,
    }
