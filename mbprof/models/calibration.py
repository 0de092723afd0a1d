"""Weights that behave like trained ones, without data (docs/latency.md, "Weights"): batch
norms calibrated on random images in training mode, so that each hands on unit-scale
activations, and the classifier scaled to unit logits. Random init left as it is gives logits
of about 1e-9, where an output check cannot fail and x86 reaches slow denormals. Only
mbprof's own models with their random init are calibrated."""

from __future__ import annotations

import torch
from torch import nn

BATCH, BATCHES = 4, 2  # 8 random images: a channel's statistics over 8 x H x W values
SEED = 0


def _norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def calibrate(
    model: nn.Module,
    resolution: tuple[int, int],
    batch: int = BATCH,
    batches: int = BATCHES,
    seed: int = SEED,
) -> nn.Module:
    """Calibrate ``model`` in place (see the module's docstring) at the input
    ``resolution`` (height, width) it will run at (statistics at another size do not carry
    over: padding and pooling see other borders), and return it in eval mode. A model on
    the meta device is returned as it is."""
    if any(p.is_meta for p in model.parameters()):
        return model.eval()
    norms = _norms(model)
    generator = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    shape = (batch, 3, *resolution)
    images = [torch.randn(shape, generator=generator).to(device) for _ in range(max(1, batches))]
    saved = [(m, m.momentum) for m in norms]
    with torch.no_grad():
        if norms:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the batches
            model.train()
            for x in images:
                model(x)
            for m, momentum in saved:
                m.momentum = momentum
        model.eval()
        _unit_logits(model, images[0])
    return model


def _unit_logits(model: nn.Module, x: torch.Tensor) -> None:
    """Scale the last fully connected layer so that the logits' standard deviation is 1."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.numel() < 2:
        return
    spread = float(out.float().std())
    if spread > 0 and torch.isfinite(torch.tensor(spread)):
        last = linears[-1]
        last.weight.mul_(1.0 / spread)
        if last.bias is not None:
            last.bias.mul_(1.0 / spread)
