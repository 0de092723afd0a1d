"""Which parameters the inference forward pass reads: ``params_used``.

A network built for training can hold parameters that inference never reads: GoogLeNet's
and Inception v3's auxiliary classifiers are called only in training mode. ``params``
counts every parameter as torch does; ``params_used`` counts those that some aten op of
one eval-mode forward pass takes as an argument (a view of a parameter counts as the
parameter). That is what a deployed network holds.

How: one forward pass under a TorchDispatchMode that records the storage of every tensor
argument, on the meta device (the parameters stood in for by meta tensors: no memory, no
arithmetic; the caller's model is not changed). Which modules were *called* is not enough:
Swin's attention reads ``self.qkv.weight`` through ``F.linear`` without calling ``qkv``,
and ``nn.MultiheadAttention`` reads ``out_proj`` the same way. A forward pass that does not
run on the meta device (it reads tensor values into Python: ``.item()``, ``if x.sum() > 0``)
runs once for real on a zero input; the dispatch mode then also sees those reads
(``aten::_local_scalar_dense``) and the counts are for the path a zero input takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mbprof.analysis.footprint import meta_state

# aten ops that copy a tensor's value out to Python (bool(), .item(), torch.equal)
VALUE_READS = frozenset({"aten::_local_scalar_dense", "aten::is_nonzero", "aten::equal"})
NAMED_AT_MOST = 4


def _storage(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):  # a tensor without storage (sparse, nested)
        return 0


class _Reads(TorchDispatchMode):
    def __init__(self, owners: dict[int, list[int]]) -> None:
        super().__init__()
        self.owners = owners  # storage -> ids of the model's parameters that live there
        self.read: set[int] = set()
        self.values_read = False

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing here is compiled: do not import torch._dynamo for it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func._schema.name in VALUE_READS:
            self.values_read = True
        for leaf in tree_leaves((args, kwargs)):
            if isinstance(leaf, torch.Tensor):
                self.read.update(self.owners.get(_storage(leaf), ()))
        return func(*args, **kwargs)


@dataclass(frozen=True)
class ParamReads:
    """``read``: ``id()`` of the model's parameters that the forward pass read.
    ``on_meta``: whether it ran on the meta device; ``values_read``: whether (run for real)
    it read a tensor's value into Python."""

    read: frozenset[int]
    on_meta: bool
    values_read: bool = False


def read_parameters(model: nn.Module, input_shape: Sequence[int]) -> ParamReads:
    """The parameters one eval-mode forward pass of ``model`` on ``input_shape`` reads."""
    params = dict(model.named_parameters())
    state = meta_state(model)
    owners: dict[int, list[int]] = {}
    for name, param in params.items():
        owners.setdefault(_storage(state[name]), []).append(id(param))
    mode = _Reads(owners)
    try:
        example = torch.zeros(tuple(input_shape), device="meta")
        with torch.no_grad(), torch.device("meta"), mode:
            torch.func.functional_call(model, state, (example,), strict=False)
        return ParamReads(frozenset(mode.read), on_meta=True)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - it reads tensor values: once for real
        pass
    owners = {}
    for param in params.values():
        owners.setdefault(_storage(param), []).append(id(param))
    mode = _Reads(owners)
    with torch.inference_mode(), mode:
        model(torch.zeros(tuple(input_shape)))
    return ParamReads(frozenset(mode.read), False, mode.values_read)


def count_read(model: nn.Module, reads: ParamReads) -> int:
    """``params_used``: elements of the parameters the forward pass read (tied ones once)."""
    return sum(p.numel() for p in model.parameters() if id(p) in reads.read)


def unused_modules(model: nn.Module, read: frozenset[int]) -> list[str]:
    """The outermost modules that hold parameters none of which was read."""
    names: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(f"{outer}.") for outer in names):
            continue
        held = list(module.parameters())
        if held and not any(id(p) in read for p in held):
            names.append(name)
    return names


def notes(model: nn.Module, reads: ParamReads, params: int, params_used: int) -> tuple[str, ...]:
    """What a reader of the counts should know: parameters the forward pass never reads
    (which modules hold them), and a forward pass that branches on tensor values."""
    said = []
    if params_used != params:
        unused = unused_modules(model, reads.read)
        named = ", ".join(unused[:NAMED_AT_MOST])
        if len(unused) > NAMED_AT_MOST:
            named += f" and {len(unused) - NAMED_AT_MOST} more"
        said.append(
            f"params_used {params_used:,} of {params:,}: the inference forward pass never "
            f"reads {params - params_used:,} parameters" + (f" (in {named})" if named else "")
        )
    if reads.values_read:
        said.append(
            "the forward pass reads tensor values into Python (.item(), a tensor as an if "
            "condition): the counts are for the path an all-zeros input takes"
        )
    return tuple(said)
