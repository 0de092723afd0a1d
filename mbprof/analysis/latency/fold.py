"""Batch norm folded into the preceding convolutions: the deployed form."""

from __future__ import annotations

import copy

from torch import nn


def _is_conv_bn(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and conv.out_channels == bn.num_features
    )


def _fold_traced(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold with a torch.fx trace: every call of a Conv2d whose only user is a BatchNorm2d."""
    from torch.fx import Node, symbolic_trace
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    traced = symbolic_trace(model)
    modules = dict(traced.named_modules())
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folded = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        prev = node.args[0]
        if not isinstance(prev, Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        conv, bn = modules[prev.target], modules[node.target]
        if not _is_conv_bn(conv, bn) or calls[prev.target] != 1 or calls[node.target] != 1:
            continue
        fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
        parent_name, _, attr = prev.target.rpartition(".")
        setattr(traced.get_submodule(parent_name) if parent_name else traced, attr, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        traced.graph.erase_node(node)
        folded += 1
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()
    return traced, folded


def _fold_sequential(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold Conv2d -> BatchNorm2d neighbours inside nn.Sequential containers (the fallback
    for models that torch.fx cannot trace)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = container._modules[first], container._modules[second]
            if conv is not None and bn is not None and _is_conv_bn(conv, bn):
                container._modules[first] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                container._modules[second] = nn.Identity()
                folded += 1
    return model, folded


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int, int]:
    """A copy of ``model`` (eval mode) with each BatchNorm2d that directly follows a
    Conv2d folded into that convolution's weight and bias: the deployed form.

    Returns (folded model, batch norms folded, batch norms left). The original model
    is not touched. Output is the same up to float rounding.
    """
    model = copy.deepcopy(model).eval()
    try:
        fused, folded = _fold_traced(model)
    except Exception:  # noqa: BLE001 - fx cannot trace every model; fall back, never fail
        fused, folded = _fold_sequential(copy.deepcopy(model))
    left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    return fused.eval(), folded, left
