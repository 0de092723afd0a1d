"""Parse what people type into checked values; refusals name the option, value and what is
allowed."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
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
MAX_GRID_VALUES = 100_000  # values of one list option (--widths 0.25:1.5:0.05 and its items)


def refused(option: str, why: str) -> MbprofError:
    return MbprofError(f"{option}: {why}", field=option)


def _items(text: str, option: str) -> list[str]:
    items = [item.strip() for item in str(text).split(",")]
    if any(item == "" for item in items):
        raise refused(option, f"empty item in {text!r}; give a comma-separated list")
    return items


def parse_positive_float(
    text: str | float, option: str, maximum: float | None = None, unit: str = ""
) -> float:
    """A finite number > 0 (not a bool), and <= ``maximum`` when given."""
    try:
        if isinstance(text, bool):
            raise TypeError
        value = float(text)
    except (TypeError, ValueError):
        raise refused(option, f"{text!r} is not a number; give a finite number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise refused(option, f"{text!r} is not allowed; give a finite number > 0")
    if maximum is not None and value > maximum:
        raise refused(option, f"{text!r} is too large; give a number > 0 and <= {maximum:g}{unit}")
    return value


def grid_range(text: str, option: str, integer: bool = False) -> list[Decimal]:
    """'start:stop:step' -> start, start + step, ... up to stop, in decimal (no float drift)."""
    shown = text.strip()
    parts = [part.strip() for part in shown.split(":")]
    kind = "integers" if integer else "numbers"
    if len(parts) != 3:
        raise refused(
            option, f"{shown!r} is not a range; give start:stop:step such as 0.25:1.5:0.05"
        )
    try:
        start, stop, step = values = [Decimal(part) for part in parts]
    except InvalidOperation:
        raise refused(option, f"{shown!r} is not a range of {kind}; give start:stop:step") from None
    if not all(v.is_finite() and (not integer or v == v.to_integral_value()) for v in values):
        raise refused(option, f"{shown!r} is not a range of finite {kind}; give start:stop:step")
    if step <= 0:
        raise refused(option, f"{shown!r} has step {parts[2]}; the step must be > 0")
    if stop < start:
        raise refused(
            option, f"{shown!r} yields no value: stop {parts[1]} is below start {parts[0]}"
        )
    try:
        count = int((stop - start) // step) + 1
        many = f"{count:,}"
    except InvalidOperation:  # a quotient beyond decimal precision: far too many anyway
        count, many = MAX_GRID_VALUES + 1, f"more than {MAX_GRID_VALUES:,}"
    if count > MAX_GRID_VALUES:
        raise refused(option, f"{shown!r} yields {many} values; give at most {MAX_GRID_VALUES:,}")
    return [start + index * step for index in range(count)]


def _grid(text: str, option: str, parse: Callable[[str, str], Any], integer: bool = False) -> list:
    """A comma-separated list of values and start:stop:step ranges, parsed, duplicates dropped."""
    items: list[str] = []
    for item in _items(text, option):
        if ":" in item:
            items += [format(value.normalize(), "f") for value in grid_range(item, option, integer)]
        else:
            items.append(item)
        if len(items) > MAX_GRID_VALUES:
            raise refused(
                option, f"{text!r} gives more than {MAX_GRID_VALUES:,} values; give fewer"
            )
    return list(dict.fromkeys(parse(item, option) for item in items))


def parse_float_list(text: str, option: str) -> list[float]:
    """'0.35,0.5,1.0' or '0.25:1.5:0.05' -> the numbers, duplicates dropped."""
    return _grid(text, option, parse_positive_float)


def parse_int(
    text: str | int, option: str, minimum: int = 1, maximum: int | None = None, why: str = ""
) -> int:
    """An integer >= minimum and <= maximum; ``why`` says where the maximum comes from."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and re.fullmatch(r"\s*[-+]?\d+\s*", text):
        value = int(text)
    else:
        raise refused(option, f"{text!r} is not an integer; give an integer >= {minimum}")
    if value < minimum:
        raise refused(option, f"{value} is too small; give an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise refused(
            option, f"{value} is too large{why}; give an integer from {minimum} to {maximum:,}"
        )
    return value


def parse_threads(text: str | int, option: str = "--threads") -> int:
    """Intra-op threads: 1 to the machine's logical CPUs (more only take turns on them)."""
    cpus = os.cpu_count()
    why = f" for the {cpus} logical CPUs of this machine" if cpus else ""
    return parse_int(text, option, minimum=1, maximum=cpus, why=why)


def parse_resolution(text: str | int | tuple[int, int], option: str = "--res") -> tuple[int, int]:
    """'224' or 224 -> (224, 224); '160x224' or (160, 224) -> (160, 224)."""
    allowed = (
        f"give an integer >= {MIN_RESOLUTION}, HEIGHTxWIDTH such as 160x224, "
        "or a (height, width) pair of integers"
    )
    if isinstance(text, (tuple, list)):
        sides_ok = all(isinstance(side, int) and not isinstance(side, bool) for side in text)
        if len(text) != 2 or not sides_ok:
            raise refused(option, f"{text!r} is not a resolution; {allowed}")
        dims = [int(side) for side in text]
        shown = f"{dims[0]}x{dims[1]}"
    elif isinstance(text, bool) or not isinstance(text, (int, str)):
        raise refused(option, f"{text!r} is not a resolution; {allowed}")
    else:
        shown = str(text).strip()
        parts = re.split(r"[xX]", shown)
        if len(parts) not in (1, 2) or not all(re.fullmatch(r"\d+", p.strip()) for p in parts):
            raise refused(option, f"{shown!r} is not a resolution; {allowed}")
        dims = [int(p) for p in parts]
    if any(dim < MIN_RESOLUTION for dim in dims):
        raise refused(
            option, f"{shown!r} is too small; each side must be >= {MIN_RESOLUTION} pixels"
        )
    return (dims[0], dims[-1])


def parse_resolution_list(text: str, option: str = "--res") -> list[tuple[int, int]]:
    """'96,160x224' or '96:256:16' -> the resolutions, duplicates dropped."""
    return _grid(text, option, parse_resolution, integer=True)


def parse_name_list(text: str, option: str) -> list[str]:
    return list(dict.fromkeys(_items(text, option)))


def read_literal(text: str) -> Any:
    """One builder argument's value as typed: bool, None, int, finite float, "quoted", else
    the text itself."""
    stripped = text.strip()
    words = {"true": True, "false": False, "none": None, "null": None}
    if stripped.lower() in words:
        return words[stripped.lower()]
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        try:
            return str(json.loads(stripped))
        except ValueError:
            return stripped
    for kind in (int, float):
        try:
            value = kind(stripped)
        except ValueError:
            continue
        if kind is int or math.isfinite(value):
            return value
    return stripped


def format_literal(value: Any) -> str:
    """The text that ``read_literal`` turns back into ``value``."""
    if value is None or isinstance(value, (int, float)):  # bools too: True, not 1
        return repr(value)
    text = str(value)
    needs_quotes = text == "" or re.search(r"[\s=\"']", text) or type(read_literal(text)) is not str
    return json.dumps(text) if needs_quotes else text


def parse_kwargs(items: list[str] | None, option: str = "--arg") -> tuple[tuple[str, Any], ...]:
    """['dropout=0.1', 'fix_stem_head=true'] -> (('dropout', 0.1), ('fix_stem_head', True))."""
    pairs: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise refused(option, f"{item!r} is not key=value with a Python identifier as key")
        if key in pairs:
            raise refused(option, f"{key!r} is given twice; give each argument once")
        pairs[key] = read_literal(value)
    return tuple(sorted(pairs.items()))


def parse_choice(text: str, option: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive)."""
    value = str(text).strip().lower()
    if value not in choices:
        raise refused(option, f"{text!r} is not allowed; choose one of {', '.join(choices)}")
    return value
