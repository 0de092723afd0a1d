"""The cost of one convolution layer, standard against depthwise-separable, by hand."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_int


@dataclass(frozen=True)
class ConvCost:
    """Multiplications and weights of one KxK convolution, standard and depthwise-separable."""

    in_h: int
    in_w: int
    in_channels: int
    filters: int
    kernel: int
    stride: int
    padding: str  # "same", "valid" or the pixels added on each side, as text
    out_hw: tuple[int, int]
    depthwise_params: int
    pointwise_params: int
    standard_params: int
    depthwise: int
    pointwise: int
    standard: int
    separable: int
    ratio: float  # how many times fewer multiplications the separable layer needs


def layer_cost(
    input_shape: str | tuple[int, int, int],
    filters: int | str,
    kernel: int | str,
    stride: int | str = 1,
    padding: str | int = "same",
) -> ConvCost:
    """The multiplications of one KxK convolution, standard and separable; ``input_shape``:
    (height, width, channels) or '28x28x3'; refuses a kernel larger than the padded input."""
    if isinstance(input_shape, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", input_shape)
        if not match or min(int(g) for g in match.groups()) < 1:
            raise MbprofError(
                f"input_shape: {input_shape!r} is not HEIGHTxWIDTHxCHANNELS with each >= 1, "
                "such as 28x28x3",
                field="input_shape",
            )
        input_shape = match.groups()
    height, width, channels = (parse_int(v, "input_shape") for v in input_shape)
    filters, kernel = parse_int(filters, "filters"), parse_int(kernel, "kernel")
    stride, text = parse_int(stride, "stride"), str(padding).strip().lower()
    if text not in ("same", "valid") and not re.fullmatch(r"\d+", text):
        raise MbprofError(
            f"padding: {str(padding)!r} is not allowed; give same, valid or an integer >= 0",
            field="padding",
        )
    padding = text if not text.isdigit() else str(int(text))
    pad = 0 if padding in ("same", "valid") else int(padding)
    smallest = min(height, width) + 2 * pad
    if padding != "same" and kernel > smallest:
        raise MbprofError(
            f"kernel: {kernel} is larger than the padded input side {smallest}; "
            f"give a kernel <= {smallest}",
            field="kernel",
        )
    out_hw = tuple(
        math.ceil(n / stride) if padding == "same" else (n + 2 * pad - kernel) // stride + 1
        for n in (height, width)
    )
    pixels, dw, pw = math.prod(out_hw), kernel**2 * channels, channels * filters
    std, sep = dw * filters * pixels, (dw + pw) * pixels
    geometry = (height, width, channels, filters, kernel, stride, padding, out_hw)
    return ConvCost(*geometry, dw, pw, dw * filters, dw * pixels, pw * pixels, std, sep, std / sep)
