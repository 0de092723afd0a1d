"""Weights that behave like trained ones, without data (docs/latency.md, "Weights"): batch norms
calibrated on random images, the classifier scaled to unit logits (random init gives logits of
about 1e-9, where an output check cannot fail and x86 reaches slow denormals)."""

from __future__ import annotations

import torch
from torch import nn

BATCH, BATCHES = 4, 2  # 8 random images: a channel's statistics over 8 x H x W values
SEED = 0


def calibrate(
    model: nn.Module,
    resolution: tuple[int, int],
    batch: int = BATCH,
    batches: int = BATCHES,
    seed: int = SEED,
) -> nn.Module:
    """Calibrate ``model`` in place at the (height, width) it will run at (padding and pooling
    see other borders at another size); returned in eval mode, a meta model as it is."""
    if any(p.is_meta for p in model.parameters()):
        return model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
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
        # the last fully connected layer scaled so that the logits' standard deviation is 1
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        out = model(images[0]) if linears else None
        if isinstance(out, torch.Tensor) and out.numel() >= 2:
            spread = float(out.float().std())
            if spread > 0 and torch.isfinite(torch.tensor(spread)):
                linears[-1].weight.mul_(1.0 / spread)
                if linears[-1].bias is not None:
                    linears[-1].bias.mul_(1.0 / spread)
    return model
