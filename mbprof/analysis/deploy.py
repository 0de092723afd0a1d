"""The deployed form of a model: what ships, as opposed to what was trained."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn
from torch.utils._pytree import tree_map_only

from mbprof.analysis.collector import removed_after
from mbprof.analysis.memory.trace import tensors
from mbprof.core.errors import ModelRunError

# In the order timm's reparameterize_model tries them: a module answers to the first it has.
HOOKS = ("fuse", "reparameterize", "switch_to_deploy")
RTOL = 1e-3


def _hook(module: nn.Module) -> str | None:
    return next((name for name in HOOKS if callable(getattr(module, name, None))), None)


def _same(built: object, deployed: object) -> bool:
    a, b = tensors(built), tensors(deployed)
    return len(a) == len(b) and all(
        x.shape == y.shape
        and (not x.numel() or float((x - y).abs().max()) <= RTOL * float(x.abs().max()) + 1e-6)
        for x, y in zip((t.double() for t in a), (t.double() for t in b), strict=True)
    )


@torch.no_grad()
def reparameterize(model: nn.Module, input_shape: Sequence[int]) -> tuple[nn.Module, str]:
    """A copy of ``model`` in its deployed form and the note saying what changed."""
    built = model.eval()
    if not any(_hook(m) for m in built.modules()):
        hooks = ", ".join(f"{h}()" for h in HOOKS)
        return built, f"reparam: nothing to merge (no module has {hooks}); the model is as built"
    model = copy.deepcopy(built)
    hooked = {name: m for name, m in model.named_modules() if _hook(m)}
    seen: dict[str, tuple[tuple, dict, object]] = {}

    def keep(name: str, _module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        if name not in seen:  # copied: a later in-place op (ReLU(inplace=True)) changes it
            seen[name] = tree_map_only(torch.Tensor, torch.clone, (args, kwargs, output))

    handles = [
        m.register_forward_hook(partial(keep, n), with_kwargs=True) for n, m in hooked.items()
    ]
    with removed_after(handles):
        model(torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(0)))
    before = sum(p.numel() for p in built.parameters())
    ran: Counter[str] = Counter()

    def deploy(module: nn.Module, name: str) -> nn.Module:
        hook = _hook(module)
        if hook is not None:
            result = getattr(module, hook)()
            new = result if hook == "fuse" and isinstance(result, nn.Module) else module
            new.eval()
            if name in seen:
                args, kwargs, output = seen[name]
                if not _same(output, new(*args, **kwargs)):
                    raise ModelRunError(
                        f"reparam: the {hook}() of module {name or '(model)'!r} "
                        f"({type(module).__name__}) changes its output (more than {RTOL:g} "
                        "relative); its deployed form would not compute what was built"
                    )
            ran[hook] += 1
            module = new
        for child_name, child in list(module.named_children()):
            path = f"{name}.{child_name}" if name else child_name
            setattr(module, child_name, deploy(child, path))  # the same module, or its new form
        return module

    model = deploy(model, "").eval()
    after = sum(p.numel() for p in model.parameters())
    how = ", ".join(f"{hook}() x{n}" for hook, n in ran.items())
    return model, (
        f"reparam: merged {sum(ran.values())} re-parameterizable blocks ({how}): "
        f"{before:,} -> {after:,} params"
    )


def _is_conv_bn(conv: nn.Module, bn: nn.Module) -> bool:
    pair = (type(conv), type(bn)) == (nn.Conv2d, nn.BatchNorm2d)
    return pair and bn.track_running_stats and conv.out_channels == bn.num_features


def _fold_traced(model: nn.Module) -> tuple[nn.Module, int]:
    """Fold with a torch.fx trace: every call of a Conv2d whose only user is a BatchNorm2d."""
    from torch.fx import Node, symbolic_trace
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    traced = symbolic_trace(model)
    modules = dict(traced.named_modules())
    calls = Counter(node.target for node in traced.graph.nodes if node.op == "call_module")
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
    """Fold Conv2d -> BatchNorm2d neighbours inside nn.Sequential (when fx cannot trace)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for container in (m for m in model.modules() if isinstance(m, nn.Sequential)):
        names = list(container._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = container._modules[first], container._modules[second]
            if _is_conv_bn(conv, bn):  # neither None
                container._modules[first] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                container._modules[second] = nn.Identity()
                folded += 1
    return model, folded


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int, int]:
    """(copy with each BatchNorm2d after a Conv2d folded into it, folded, left); eval mode."""
    model = copy.deepcopy(model).eval()
    try:
        fused, folded = _fold_traced(model)
    except Exception:  # noqa: BLE001 - fx cannot trace every model; fall back, never fail
        fused, folded = _fold_sequential(copy.deepcopy(model))
    left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    return fused.eval(), folded, left
