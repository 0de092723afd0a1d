"""The cost of one convolution layer, standard against depthwise-separable, by hand."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_int


@dataclass(frozen=True)
class ConvCost:
    in_h: int
    in_w: int
    in_channels: int
    filters: int
    kernel: int
    stride: int
    padding: str  # "same", "valid" or the pixels added on each side, as text

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            output_size(self.in_h, self.kernel, self.stride, self.padding),
            output_size(self.in_w, self.kernel, self.stride, self.padding),
        )

    @property
    def out_pixels(self) -> int:
        h, w = self.out_hw
        return h * w

    @property
    def standard(self) -> int:
        return self.kernel**2 * self.in_channels * self.filters * self.out_pixels

    @property
    def depthwise(self) -> int:
        return self.kernel**2 * self.in_channels * self.out_pixels

    @property
    def pointwise(self) -> int:
        return self.in_channels * self.filters * self.out_pixels

    @property
    def separable(self) -> int:
        return self.depthwise + self.pointwise

    @property
    def ratio(self) -> float:
        """How many times fewer multiplications the separable layer needs."""
        return self.standard / self.separable

    @property
    def standard_params(self) -> int:
        return self.kernel**2 * self.in_channels * self.filters

    @property
    def depthwise_params(self) -> int:
        return self.kernel**2 * self.in_channels

    @property
    def pointwise_params(self) -> int:
        return self.in_channels * self.filters


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
    return ConvCost(height, width, channels, filters, kernel, stride, padding)
