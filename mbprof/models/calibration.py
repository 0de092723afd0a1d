"""Weights that behave like trained ones, without data (docs/latency.md, "Weights"): batch norms
calibrated on random images, the classifier scaled to unit logits (random init gives logits of
about 1e-9, where an output check cannot fail and x86 reaches slow denormals)."""

from __future__ import annotations

import torch
from torch import nn

BATCH, BATCHES, SEED = 4, 2, 0  # 8 random images: a channel's statistics over 8 x H x W values


def calibrate(model: nn.Module, resolution: tuple[int, int]) -> nn.Module:
    """Calibrate ``model`` in place at the (height, width) it will run at (padding and pooling
    see other borders at another size); returned in eval mode, a meta model as it is."""
    if any(p.is_meta for p in model.parameters()):
        return model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    generator = torch.Generator().manual_seed(SEED)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    images = [torch.randn((BATCH, 3, *resolution), generator=generator) for _ in range(BATCHES)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        if norms:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the batches
            model.train()
            for x in images:
                model(x.to(device))
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
        model.eval()
        # the last fully connected layer scaled so that the logits' standard deviation is 1
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        out = model(images[0].to(device)) if linears else None
        if isinstance(out, torch.Tensor) and out.numel() >= 2:
            spread = float(out.float().std())
            if 0 < spread < float("inf"):
                for p in (linears[-1].weight, linears[-1].bias):
                    if p is not None:
                        p.mul_(1.0 / spread)
    return model
