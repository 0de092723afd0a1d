"""mbprof cost"""

from __future__ import annotations

import typer

from mbprof.cli._app import app
from mbprof.cli._options import Output, output_options


@app.command("cost")
@output_options
def cost_command(
    input_shape: str = typer.Option(
        ..., "--input", "-i", help="Input feature map HEIGHTxWIDTHxCHANNELS, such as 28x28x3."
    ),
    filters: str = typer.Option(..., "--filters", help="Output channels, an integer >= 1."),
    kernel: str = typer.Option("3", "--kernel", "-k", help="Kernel side K (a KxK kernel)."),
    stride: str = typer.Option("1", "--stride", "-s", help="Stride, an integer >= 1."),
    padding: str = typer.Option(
        "same",
        "--padding",
        help="same (output ceil(H/stride), TensorFlow's rule), valid (none), or pixels N "
        "added on each side.",
    ),
    *,
    out: Output,
) -> None:
    """Multiplications of one KxK convolution layer, standard against depthwise-separable
    (a depthwise KxK then a pointwise 1x1), by hand from the shapes.

    Example: mbprof cost --input 28x28x3 --filters 64 --kernel 3
    """
    out.check()
    from mbprof.api import layer_cost
    from mbprof.render.command_views import cost_document

    cost = layer_cost(input_shape, filters, kernel, stride, padding)
    out.emit(cost_document(cost))
