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


def _unwrap(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], path)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise WeightsError(f"weights file {str(path)!r} does not hold a state dict of tensors")


def _refusal(path: Path, message: str) -> str:
    """Why torch's safe loader refused ``path``, in mbprof's words. torch's own text is
    never passed on: it advises retrying with weights_only=False, which would run
    whatever code the file holds."""
    where = f"weights file {str(path)!r}"
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (
            f"{where} refers to {found.group(1)}, which is not a tensor or a plain container; "
            "mbprof loads checkpoints with weights_only=True and never runs code from one"
        )
    return (
        f"{where} is not a readable PyTorch checkpoint: its data is not a state dict saved "
        "by torch.save (or the file is damaged)"
    )


def load_weights(model: nn.Module, path: str | Path, label: str = "the model") -> nn.Module:
    """Load ``path`` into ``model`` in place; every key and shape must match."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(_refusal(path, str(exc))) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(
            f"weights file {str(path)!r} is not a readable PyTorch checkpoint ({type(exc).__name__})"
        ) from None
    state = {k.removeprefix("module."): v for k, v in _unwrap(obj, path).items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise WeightsError(
            f"weights file {str(path)!r} does not fit {label}: {k} has shape "
            f"{list(state[k].shape)} in the file but {list(expected[k].shape)} in the model{more}"
        )
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise WeightsError(f"weights file {str(path)!r} does not fit {label}: {', '.join(parts)}")
    model.load_state_dict(state)
    return model
