"""One convolution layer's cost by hand (``mbprof cost``): standard against
depthwise-separable, from its shapes alone (see ``mbprof.analysis.layer_cost``)."""

from __future__ import annotations

from mbprof.analysis.layer_cost import ConvCost, conv_cost, parse_input_shape
from mbprof.core.parsing import parse_int


def layer_cost(
    input_shape: str | tuple[int, int, int],
    filters: int | str,
    kernel: int | str,
    stride: int | str = 1,
    padding: str | int = "same",
) -> ConvCost:
    """The multiplications of one KxK convolution from ``input_shape`` (HEIGHTxWIDTHxCHANNELS
    text such as '28x28x3', or a tuple) to ``filters`` channels, standard and separable.

    >>> layer_cost("28x28x3", 64, 3).ratio
    7.890...
    """
    if isinstance(input_shape, str):
        height, width, channels = parse_input_shape(input_shape, "input_shape")
    else:
        height, width, channels = (parse_int(v, "input_shape") for v in input_shape)
    return conv_cost(
        height,
        width,
        channels,
        parse_int(filters, "filters"),
        parse_int(kernel, "kernel"),
        parse_int(stride, "stride"),
        padding,
    )
