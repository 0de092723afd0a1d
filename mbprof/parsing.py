"""Parse what people type on the command line into checked values.

Every function raises ``MbprofError`` with one sentence that names the option,
the bad value and what is allowed. Nothing here imports torch.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mbprof.errors import MbprofError

MIN_RESOLUTION = 32


def _items(text: str, option: str) -> list[str]:
    items = [item.strip() for item in str(text).split(",")]
    if any(item == "" for item in items):
        raise MbprofError(f"{option}: empty item in {text!r}; give a comma-separated list")
    return items


def parse_positive_float(text: str | float, option: str) -> float:
    """A finite number > 0 (width and depth multipliers)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MbprofError(f"{option}: {text!r} is not a number; give a finite number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise MbprofError(f"{option}: {text!r} is not allowed; give a finite number > 0")
    return value


def parse_float_list(text: str, option: str) -> list[float]:
    """'0.35,0.5,1.0' -> [0.35, 0.5, 1.0], each a finite number > 0, duplicates dropped."""
    values = [parse_positive_float(item, option) for item in _items(text, option)]
    return list(dict.fromkeys(values))


def parse_int(text: str | int, option: str, minimum: int = 1) -> int:
    """An integer >= minimum (written as digits: 1.5 and 'abc' are refused)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and re.fullmatch(r"\s*[-+]?\d+\s*", text):
        value = int(text)
    else:
        raise MbprofError(f"{option}: {text!r} is not an integer; give an integer >= {minimum}")
    if value < minimum:
        raise MbprofError(f"{option}: {value} is too small; give an integer >= {minimum}")
    return value


def parse_resolution(text: str | int, option: str = "--res") -> tuple[int, int]:
    """'224' -> (224, 224); '160x224' -> (160, 224) as (height, width), each >= 32."""
    text = str(text).strip()
    parts = re.split(r"[xX]", text)
    if len(parts) not in (1, 2) or not all(re.fullmatch(r"\d+", p.strip()) for p in parts):
        raise MbprofError(
            f"{option}: {text!r} is not a resolution; give an integer >= {MIN_RESOLUTION} "
            "or HEIGHTxWIDTH such as 160x224"
        )
    dims = [int(p) for p in parts]
    for dim in dims:
        if dim < MIN_RESOLUTION:
            raise MbprofError(
                f"{option}: {text!r} is too small; each side must be >= {MIN_RESOLUTION} pixels"
            )
    return (dims[0], dims[-1])


def parse_resolution_list(text: str, option: str = "--res") -> list[tuple[int, int]]:
    values = [parse_resolution(item, option) for item in _items(text, option)]
    return list(dict.fromkeys(values))


def parse_name_list(text: str, option: str) -> list[str]:
    return list(dict.fromkeys(_items(text, option)))


def _parse_literal(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_kwargs(items: list[str] | None, option: str = "--arg") -> tuple[tuple[str, Any], ...]:
    """['dropout=0.1', 'fix_stem_head=true'] -> (('dropout', 0.1), ('fix_stem_head', True)).

    Values become bool, None, int or float when they read as one, else stay strings.
    """
    pairs: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise MbprofError(
                f"{option}: {item!r} is not key=value with a Python identifier as key"
            )
        pairs[key] = _parse_literal(value)
    return tuple(sorted(pairs.items()))


def parse_choice(text: str, option: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive)."""
    value = str(text).strip().lower()
    if value not in choices:
        raise MbprofError(f"{option}: {text!r} is not allowed; choose one of {', '.join(choices)}")
    return value


def check_latency_settings(settings: Any) -> Any:
    """A checked copy of latency settings (a ``records.LatencySettings``), names in lower
    case and numbers as numbers. Refuses, naming the option: an unknown device, dtype or
    backend, batch or threads < 1, a minimum time that is not a number > 0, a negative
    warm-up."""
    from dataclasses import replace

    from mbprof.records import BACKENDS, DEVICES, DTYPES

    if not isinstance(settings.compile_backend, str) or not settings.compile_backend:
        raise MbprofError(f"compile_backend {settings.compile_backend!r} is not a backend name")
    threads = settings.threads
    return replace(
        settings,
        device=parse_choice(settings.device, "--device", DEVICES),
        dtype=parse_choice(settings.dtype, "--dtype", DTYPES),
        backend=parse_choice(settings.backend, "--backend", BACKENDS),
        batch=parse_int(settings.batch, "--batch", minimum=1),
        threads=None if threads is None else parse_int(threads, "--threads", minimum=1),
        min_time_s=parse_positive_float(settings.min_time_s, "--min-time"),
        warmup=parse_int(settings.warmup, "--warmup", minimum=0),
        channels_last=bool(settings.channels_last),
        fuse_bn=bool(settings.fuse_bn),
    )


# Activation memory settings (issue 3): element sizes of the dtypes the memory analysis knows.
MEM_DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4, "int8": 1}
CHUNKS_PER_CHANNEL = "channel"


def parse_mem_dtype(text: str, option: str = "--mem-dtype") -> str:
    """'fp16' -> 'fp16' (also bf16, fp32, int8; case-insensitive)."""
    value = str(text).strip().lower()
    if value not in MEM_DTYPE_BYTES:
        allowed = ", ".join(MEM_DTYPE_BYTES)
        raise MbprofError(f"{option}: unknown dtype {text!r}; use one of {allowed}")
    return value


def parse_chunks(text: str | int | None, option: str = "--chunks") -> int | None:
    """'4' -> 4 (an integer >= 1); 'channel' or None -> None (one channel per chunk)."""
    if text is None or (isinstance(text, str) and text.strip().lower() == CHUNKS_PER_CHANNEL):
        return None
    if isinstance(text, bool) or not (
        isinstance(text, int) or (isinstance(text, str) and re.fullmatch(r"\s*[-+]?\d+\s*", text))
    ):
        raise MbprofError(
            f"{option}: {text!r} is not allowed; give an integer T >= 1 or "
            f"'{CHUNKS_PER_CHANNEL}' (one channel per chunk)"
        )
    value = int(text)
    if value < 1:
        raise MbprofError(
            f"{option}: {value} is too small; give an integer T >= 1 or "
            f"'{CHUNKS_PER_CHANNEL}' (one channel per chunk)"
        )
    return value
