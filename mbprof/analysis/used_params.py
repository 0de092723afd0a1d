"""Which parameters the inference forward pass reads: ``params_used``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from mbprof.analysis.footprint import meta_state
from mbprof.analysis.memory.trace import tensors

# Tensor methods and functions that copy a tensor's value out to Python.
VALUE_READS = frozenset(
    {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "__complex__", "equal"}
)
# ... and those that read only its metadata (besides every property getter, ``__get__``:
# shape, dtype, device, ``.T`` - a view, whose later use is seen by its storage).
METADATA = frozenset(
    (
        "__get__ size dim ndimension numel nelement stride storage_offset element_size is_contiguous "
        "is_floating_point is_complex get_device data_ptr untyped_storage __len__"
    ).split()
)
NAMED_AT_MOST = 4


def _storage(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage()._cdata
    # NotImplementedError (a subclass of RuntimeError) for a tensor without storage (sparse,
    # nested); RuntimeError for one whose storage cannot be read here
    except RuntimeError:
        return 0


class _Reads(TorchFunctionMode):
    def __init__(self, owners: dict[int, list[int]], on_meta: bool) -> None:
        super().__init__()
        self.owners = owners  # storage -> ids of the model's parameters that live there
        self.read: set[int] = set()
        self.values_read, self.on_meta = False, on_meta

    def reads(self) -> ParamReads:
        """What it saw, once the forward pass has run."""
        return ParamReads(frozenset(self.read), self.on_meta, self.values_read)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in VALUE_READS:
            self.values_read = True
        if name not in METADATA:
            for tensor in tensors((args, kwargs)):
                owner = self.owners.get(_storage(tensor))
                if owner:
                    self.read.update(owner)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class ParamReads:
    """``read``: ``id()`` of the model's parameters that the forward pass read."""

    read: frozenset[int]
    on_meta: bool
    values_read: bool = False


@contextmanager
def recording(model: nn.Module, state: dict[str, torch.Tensor] | None = None) -> Iterator[_Reads]:
    """Record which parameters of ``model`` (or their stand-ins in ``state``) are read inside."""
    owners: dict[int, list[int]] = {}
    for name, param in model.named_parameters():
        tensor = param if state is None else state[name]
        owners.setdefault(_storage(tensor), []).append(id(param))
    with _Reads(owners, on_meta=state is not None) as mode:
        yield mode


def read_parameters(model: nn.Module, input_shape: Sequence[int]) -> ParamReads:
    """The parameters one eval-mode forward pass of ``model`` on ``input_shape`` reads."""
    state = meta_state(model)
    try:
        example = torch.zeros(tuple(input_shape), device="meta")
        with torch.no_grad(), torch.device("meta"), recording(model, state) as seen:
            torch.func.functional_call(model, state, (example,), strict=False)
        return seen.reads()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - it reads tensor values: once for real
        pass
    with torch.inference_mode(), recording(model) as seen:
        model(torch.zeros(tuple(input_shape)))
    return seen.reads()


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
    """Notes: parameters never read (and where), a forward pass that branches on values."""
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
