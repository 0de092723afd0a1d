"""Lowered ExecuTorch programs kept in mbprof's cache folder, so that a study that lowers
dozens of networks (``reproduce``'s phone section: about 15 s of lowering for each
MobileNetV2) lowers each one once.

A program is keyed by what decides its bytes: the exported graph's code, every weight and
buffer (name, dtype, shape and bytes), the input shape, the quantization, and the torch
and executorch versions. A model whose weights or code change gets a new key, never a
stale program. An unwritable or damaged cache only costs a new lowering.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from mbprof.analysis.latency.machine import cache_dir
from mbprof.core.errors import MbprofError
from mbprof.core.files import write_atomic

FOLDER = "executorch"


def program_key(exported: Any, input_shape: tuple[int, ...], quantize: str) -> str:
    """A hex digest of what decides the program lowered from ``exported`` (an
    ``ExportedProgram``)."""
    digest = hashlib.sha256()
    for part in (
        torch.__version__,
        version("executorch"),
        quantize,
        repr(tuple(input_shape)),
        exported.graph_module.code,
    ):
        digest.update(part.encode() + b"\0")
    tensors = {**exported.state_dict, **getattr(exported, "constants", {})}
    for name in sorted(tensors):
        tensor = tensors[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode() + b"\0")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class CachedProgram:
    pte: bytes
    meta: dict[str, Any]  # what the lowering reported (delegation, seconds)


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / FOLDER
    return folder / f"{key}.pte", folder / f"{key}.json"


def read_program(key: str) -> CachedProgram | None:
    """The program stored under ``key``, or None (missing, or damaged: lowered again)."""
    pte_path, meta_path = _paths(key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        pte = pte_path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("bytes") != len(pte):
        return None
    return CachedProgram(pte, meta)


def write_program(key: str, pte: bytes, meta: dict[str, Any]) -> None:
    """Store a program (its description last, so that a half-written one is never read)."""
    pte_path, meta_path = _paths(key)
    try:
        pte_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(pte_path, pte)
        write_atomic(meta_path, json.dumps({**meta, "bytes": len(pte)}, indent=1))
    except (OSError, MbprofError):
        pass  # no cache here: the next run lowers again
