"""A second, independent MAdds count for the model tests: torch's own FlopCounterMode
(dispatcher level, no fvcore), halved, over convolutions and matrix products only.
Also a fixture that runs a test module on one thread: on the shared 2-core machine,
two OpenMP threads make NASNet's many small convs ~10x slower."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# aten ops whose FLOPs (2 per multiply-accumulate) FlopCounterMode reports for inference
MADD_OPS = {"convolution", "_convolution", "conv2d", "mm", "addmm", "bmm", "baddbmm"}


def torch_madds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of conv and fully connected layers for one image, by torch."""
    model = model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(input_shape))
    flops = counter.get_flop_counts()["Global"]
    total = 0
    for op, n in flops.items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        assert name in MADD_OPS, f"FlopCounterMode counted an op this reference ignores: {op}"
        total += n
    assert total % 2 == 0
    return total // 2 // input_shape[0]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
