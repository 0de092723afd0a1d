"""Parse what people type on the command line into checked values.

Every function raises ``MbprofError`` with one sentence that names the option,
the bad value and what is allowed. Nothing here imports torch.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from mbprof.core.errors import MbprofError

MIN_RESOLUTION = 32
# Upper bounds, so that a typo (an extra zero, a pasted exponent) is refused at once rather
# than met by an allocation failure, an int64 overflow in torch or an hour of timing.
MAX_CLASSES = 10**9  # beyond any classifier; below it the memory check names --classes
MAX_BATCH = 10**6  # images per forward pass; below it the memory check names --batch
MAX_MIN_TIME_S = 3600.0  # one hour of timed runs per configuration
MAX_WARMUP = 10_000  # untimed runs before timing
MAX_THREADS = 4096  # in a file, read anywhere; measuring allows this machine's logical CPUs


def _items(text: str, option: str) -> list[str]:
    items = [item.strip() for item in str(text).split(",")]
    if any(item == "" for item in items):
        raise MbprofError(f"{option}: empty item in {text!r}; give a comma-separated list")
    return items


def parse_positive_float(
    text: str | float, option: str, maximum: float | None = None, unit: str = ""
) -> float:
    """A finite number > 0 (width and depth multipliers), and <= ``maximum`` when given.
    A bool is refused: ``width=True`` is a slip, not 1.0."""
    try:
        if isinstance(text, bool):
            raise TypeError
        value = float(text)
    except (TypeError, ValueError):
        raise MbprofError(f"{option}: {text!r} is not a number; give a finite number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise MbprofError(f"{option}: {text!r} is not allowed; give a finite number > 0")
    if maximum is not None and value > maximum:
        raise MbprofError(
            f"{option}: {text!r} is too large; give a number > 0 and <= {maximum:g}{unit}"
        )
    return value


def parse_float_list(text: str, option: str) -> list[float]:
    """'0.35,0.5,1.0' -> [0.35, 0.5, 1.0], each a finite number > 0, duplicates dropped."""
    values = [parse_positive_float(item, option) for item in _items(text, option)]
    return list(dict.fromkeys(values))


def parse_int(
    text: str | int, option: str, minimum: int = 1, maximum: int | None = None, why: str = ""
) -> int:
    """An integer >= minimum and <= maximum (written as digits: 1.5 and 'abc' are refused).
    ``why`` says where the maximum comes from, when it is not a fixed bound."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and re.fullmatch(r"\s*[-+]?\d+\s*", text):
        value = int(text)
    else:
        raise MbprofError(f"{option}: {text!r} is not an integer; give an integer >= {minimum}")
    if value < minimum:
        raise MbprofError(f"{option}: {value} is too small; give an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise MbprofError(
            f"{option}: {value} is too large{why}; give an integer from {minimum} to {maximum:,}"
        )
    return value


def logical_cpus() -> int | None:
    """The logical CPUs of this machine (None when the OS does not say)."""
    return os.cpu_count()


def parse_threads(text: str | int, option: str = "--threads") -> int:
    """Intra-op threads: 1 to the machine's logical CPUs. More threads than CPUs only take
    turns on them (and 10000 of them took over a minute to start): that is not a setting
    worth timing."""
    cpus = logical_cpus()
    why = f" for the {cpus} logical CPUs of this machine" if cpus else ""
    return parse_int(text, option, minimum=1, maximum=cpus, why=why)


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
            value = kind(text)
        except ValueError:
            continue
        # 'inf', 'nan' and '1e309' stay text: no builder argument wants a non-finite
        # number, and the builder's check (models.check_kwargs) then names the value.
        if kind is int or math.isfinite(value):
            return value
    return text


def parse_kwargs(items: list[str] | None, option: str = "--arg") -> tuple[tuple[str, Any], ...]:
    """['dropout=0.1', 'fix_stem_head=true'] -> (('dropout', 0.1), ('fix_stem_head', True)).

    Values become bool, None, int or a finite float when they read as one, else stay
    strings; ``mbprof.models.check_kwargs`` then checks each against the builder's
    parameter (a bool parameter takes true/false or 1/0, nothing else). A key given twice
    is refused: which one was meant?
    """
    pairs: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise MbprofError(
                f"{option}: {item!r} is not key=value with a Python identifier as key"
            )
        if key in pairs:
            raise MbprofError(f"{option}: {key!r} is given twice; give each argument once")
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
    backend, batch < 1 or > MAX_BATCH, threads < 1 or more than the logical CPUs, a minimum
    time that is not a number > 0 and <= MAX_MIN_TIME_S seconds, a warm-up < 0 or >
    MAX_WARMUP."""
    from dataclasses import replace

    from mbprof.core.records import BACKENDS, DEVICES, DTYPES

    if not isinstance(settings.compile_backend, str) or not settings.compile_backend:
        raise MbprofError(f"compile_backend {settings.compile_backend!r} is not a backend name")
    threads = settings.threads
    return replace(
        settings,
        device=parse_choice(settings.device, "--device", DEVICES),
        dtype=parse_choice(settings.dtype, "--dtype", DTYPES),
        backend=parse_choice(settings.backend, "--backend", BACKENDS),
        batch=parse_int(settings.batch, "--batch", minimum=1, maximum=MAX_BATCH),
        threads=None if threads is None else parse_threads(threads, "--threads"),
        min_time_s=parse_positive_float(
            settings.min_time_s, "--min-time", maximum=MAX_MIN_TIME_S, unit=" s"
        ),
        warmup=parse_int(settings.warmup, "--warmup", minimum=0, maximum=MAX_WARMUP),
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
