"""Tiny registered models for the latency tests (fast to count, build and time)."""

from __future__ import annotations

import pytest
from torch import nn


# by hand: conv 3->4, 3x3, padding 1, no bias: 4 x 3 x 9 per output pixel; linear 4->3: 12
def tiny_madds(side: int) -> int:
    return 4 * 3 * 9 * side * side + 12


class Tiny(nn.Module):
    """conv 3->4 3x3 (padding 1) and a linear 4->3; with ``batch_one`` it runs at batch 1
    (counting) but not at batch 2: a genuine failure for a sweep to record."""

    def __init__(self, batch_one: bool = False) -> None:
        super().__init__()
        self.batch_one = batch_one
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return self.fc(y.view(1, -1) if self.batch_one else y)


@pytest.fixture
def tiny_models():
    """Two registered test models: test_tiny and test_batch_one (which fails at batch 2),
    registered through the public registry and removed afterwards."""
    from mbprof.models import register_model, unregister_model

    names = []
    for name, batch_one in (("test_tiny", False), ("test_batch_one", True)):

        def build(width: float = 1.0, num_classes: int = 1000, _b: bool = batch_one) -> nn.Module:
            return Tiny(_b)

        register_model(name, family="test", summary="", reference="")(build)
        names.append(name)
    yield names
    for name in names:
        unregister_model(name)


class ConvBnLinear(nn.Module):
    """conv 3->8 3x3 stride 2 (padding 1, no bias), batch norm, ReLU, global pooling and a
    linear 8->10: small enough to count by hand (``tests/api/test_module_targets.py``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.bn(self.conv(x)))).flatten(1))
