"""Numbers and their units, both ways: decimal prefixes for counts and bytes (KB = 1000
bytes, as the paper's Table 3; KiB/MiB parsed, never printed), times in milliseconds."""

from __future__ import annotations

import math
import re
from typing import Any

from mbprof.core.errors import MbprofError

_COUNT_PREFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTE_UNITS = {"": 1, "B": 1, **{f"{p}B": 1000**i for i, p in enumerate("KMG", 1)}}
_BYTE_UNITS |= {f"{p}IB": 1024**i for i, p in enumerate("KMG", 1)}  # KiB, MiB, GiB
_TIME_UNITS = {"": 1.0, "US": 1e-3, "MS": 1.0, "S": 1e3}  # to milliseconds

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def is_missing(value: Any) -> bool:
    """None, NaN (float or numpy), or pandas' NA/NaT: a cell with no value."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN, float or numpy
    except (TypeError, ValueError):
        return False


def _multiplier(value: float) -> str:
    """1 -> '1.0', 0.35 -> '0.35' (as the papers write widths)."""
    text = f"{value:g}"
    return text if any(c in text for c in ".en") else f"{text}.0"


def _scaled(value: float, units: tuple[tuple[str, int], ...], digits: int, small: str) -> str:
    """``value`` in the largest of ``units`` that it reaches, else ``small``."""
    for unit, scale in units:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}{unit}"
    return small


_COUNTS = tuple((prefix, _COUNT_PREFIX[prefix]) for prefix in "TGMK")
_BYTES = tuple((f" {unit}", _BYTE_UNITS[unit]) for unit in ("GB", "MB", "KB"))
# Kind of a value -> its text (the header, or the text for budgets, carries the unit).
_FORMATS = {
    "text": str,
    "float": _multiplier,
    "int": lambda v: f"{int(v):,}",
    "count": lambda v: _scaled(v, _COUNTS, 2, f"{v:g}" if isinstance(v, float) else str(v)),
    "millions": lambda v: f"{v / 1e6:,.2f}",
    "bytes": lambda v: _scaled(v, _BYTES, 1, f"{int(v)} B"),  # 401408 -> '401.4 KB'
    "size": lambda v: _scaled(v, _BYTES, 2, f"{int(v)} B"),
    "kb": lambda v: f"{v / 1000:,.1f}",  # one fixed unit, so that rows compare at a glance
    "ms": lambda v: f"{v:,.2f}",
    "duration": lambda v: f"{v:.2f} ms",
    "delta": lambda v: f"{v:+,}" if isinstance(v, int) else f"{v:+,.3f}",  # signed
    "percent": lambda v: f"{v:.1f}%",
    "rate": lambda v: f"{v:,.1f}",
}


def format_value(value: Any, kind: str) -> str:
    """The one number formatter: ``value`` as text of its ``kind`` ('-' when missing)."""
    if is_missing(value):
        return "-"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if kind in _FORMATS:
        return _FORMATS[kind](value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return str(value)


def _finite(value: float, text: object, what: str) -> float:
    if math.isnan(value):
        raise MbprofError(f"{what} {text!r} is not a number")
    if math.isinf(value):
        raise MbprofError(f"{what} {text!r} is too large: give a finite number")
    return value


def _with_unit(text: Any, what: str, units: dict[str, Any], use: str, integer: bool) -> Any:
    """A number as given, or text: a number and a unit of ``units`` ('' for none)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not integer:
            return _finite(float(text), text, what)
        return text if isinstance(text, int) else int(_finite(text, text, what))
    shown = str(text)
    match = re.fullmatch(_NUMBER + r"\s*([A-Za-z]*)", shown.strip())
    if not match:
        raise MbprofError(f"{what} {shown!r} is not a number with an optional unit")
    number, unit = _finite(float(match.group(1)), shown, what), match.group(2)
    if unit.upper() not in units:
        raise MbprofError(f"{what} {text!r} has an unknown unit {unit!r}: use {use}")
    value = _finite(number * units[unit.upper()], text, what)
    return round(value) if integer else value


def parse_count(text: str | int | float, what: str = "count") -> int:
    """'300M' -> 300_000_000; '3.5M' -> 3_500_000; 1200 -> 1200."""
    return _with_unit(text, what, _COUNT_PREFIX, "K, M or G", integer=True)


def parse_bytes(text: str | int | float, what: str = "size") -> int:
    """'1.2 MB' -> 1_200_000; '400KB' -> 400_000; '1 MiB' -> 1_048_576; 512 -> 512."""
    use = "B, KB, MB, GB, KiB, MiB or GiB"
    return _with_unit(text, what, _BYTE_UNITS, use, integer=True)


def parse_percent(text: str, what: str = "tolerance") -> float:
    """'10%' -> 10.0 (the % sign is required: 0.1 and 10 are never confused)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise MbprofError(f"{what} {text!r} is not a percentage; write it as a string like '10%'")
    match = re.fullmatch(_NUMBER + r"\s*%", text.strip())
    if not match:
        raise MbprofError(f"{what} {text!r} is not a percentage; write it like '10%' (>= 0)")
    return _finite(float(match.group(1)), text, what)


def parse_ms(text: str | int | float, what: str = "time") -> float:
    """'25 ms' -> 25.0; '0.5s' -> 500.0; '800us' -> 0.8; 12 -> 12.0 (milliseconds)."""
    return _with_unit(text, what, _TIME_UNITS, "us, ms or s", integer=False)
