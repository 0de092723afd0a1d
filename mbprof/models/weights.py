"""Load a local checkpoint into a model, safely (``weights_only=True``) and with
errors that say what does not fit."""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from mbprof.core.errors import WeightsError

# Wrappers that training scripts put around a state dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")


def _unwrap(obj: object, where: str) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], where)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError(f"{where} does not hold a state dict of tensors")


def load_weights(model: nn.Module, path: str | Path, label: str = "the model") -> nn.Module:
    """Load ``path`` into ``model`` in place; every key and shape must match."""
    where = f"weights file {str(path)!r}"
    if not Path(path).is_file():
        raise WeightsError(f"{where} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own text is never passed on: it advises retrying with weights_only=False,
        # which would run whatever code the file holds.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise WeightsError(
            f"{where} refers to {found.group(1)}, which is not a tensor or a plain container; "
            "mbprof loads checkpoints with weights_only=True and never runs code from one"
            if found
            else f"{where} is not a readable PyTorch checkpoint: its data is not a state dict "
            "saved by torch.save (or the file is damaged)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(
            f"{where} is not a readable PyTorch checkpoint ({type(exc).__name__})"
        ) from None
    state = {k.removeprefix("module."): v for k, v in _unwrap(obj, where).items()}
    expected = model.state_dict()
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if wrong:
        k, more = wrong[0], f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise WeightsError(
            f"{where} does not fit {label}: {k} has shape {list(state[k].shape)} in the file "
            f"but {list(expected[k].shape)} in the model{more}"
        )
    parts = [
        f"{len(keys)} {what} keys (first: {keys[0]})"
        for what, keys in (
            ("missing", [k for k in expected if k not in state]),
            ("unexpected", [k for k in state if k not in expected]),
        )
        if keys
    ]
    if parts:
        raise WeightsError(f"{where} does not fit {label}: {', '.join(parts)}")
    model.load_state_dict(state)
    return model
