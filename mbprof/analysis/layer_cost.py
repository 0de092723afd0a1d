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


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output length along one side for ``padding`` 'same', 'valid' or an integer."""
    if padding == "same":
        return math.ceil(size / stride)
    pad = 0 if padding == "valid" else int(padding)
    return (size + 2 * pad - kernel) // stride + 1


def parse_input_shape(text: str, option: str = "input_shape") -> tuple[int, int, int]:
    """'28x28x3' -> (28, 28, 3): height x width x channels, each >= 1."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or min(int(g) for g in match.groups()) < 1:
        raise MbprofError(
            f"{option}: {text!r} is not HEIGHTxWIDTHxCHANNELS with each >= 1, such as 28x28x3",
            field=option,
        )
    h, w, c = (int(g) for g in match.groups())
    return h, w, c


def layer_cost(
    input_shape: str | tuple[int, int, int],
    filters: int | str,
    kernel: int | str,
    stride: int | str = 1,
    padding: str | int = "same",
) -> ConvCost:
    """The multiplications of one KxK convolution, standard and separable; refuses a kernel
    larger than the padded input."""
    if isinstance(input_shape, str):
        height, width, channels = parse_input_shape(input_shape, "input_shape")
    else:
        height, width, channels = (parse_int(v, "input_shape") for v in input_shape)
    filters, kernel = parse_int(filters, "filters"), parse_int(kernel, "kernel")
    stride, text = parse_int(stride, "stride"), str(padding).strip().lower()
    if text not in ("same", "valid") and not re.fullmatch(r"\d+", text):
        raise MbprofError(
            f"padding: {str(padding)!r} is not allowed; give same, valid or an integer >= 0",
            field="padding",
        )
    padding = text if not text.isdigit() else str(int(text))
    if padding != "same":
        smallest = min(height, width) + 2 * (0 if padding == "valid" else int(padding))
        if kernel > smallest:
            raise MbprofError(
                f"kernel: {kernel} is larger than the padded input side {smallest}; "
                f"give a kernel <= {smallest}",
                field="kernel",
            )
    out_hw = tuple(output_size(n, kernel, stride, padding) for n in (height, width))
    pixels, dw, pw = math.prod(out_hw), kernel**2 * channels, channels * filters
    std, sep = dw * filters * pixels, (dw + pw) * pixels
    geometry = (height, width, channels, filters, kernel, stride, padding, out_hw)
    return ConvCost(*geometry, dw, pw, dw * filters, dw * pixels, pw * pixels, std, sep, std / sep)
