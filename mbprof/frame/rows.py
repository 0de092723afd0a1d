"""The rows of a comparison frame, torch-free: the one owner of configuration -> row
(``identity_row``, ``*_columns``) and back (``spec_from_row``, ``cell``); frame files read back."""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError, ModelRunError, first_line
from mbprof.core.parsing import format_literal, parse_resolution, read_literal
from mbprof.core.records import ModelSpec
from mbprof.core.units import is_missing
from mbprof.frame.columns import DEPLOYMENT_FIGURES, ENVIRONMENT_COLUMNS, LATENCY_FIGURES

if TYPE_CHECKING:
    import pandas as pd

    from mbprof.core.records import CountReport, Environment, MemoryReport, Timing

FAILURE_TEXT_MAX = 300


def cell(row: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``row[key]`` as a plain Python value; ``default`` when absent, missing or ''."""
    value = row.get(key, default)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    return default if is_missing(value) or value == "" else value


def args_text(kwargs: tuple[tuple[str, Any], ...] | Mapping[str, Any]) -> str:
    """Builder arguments as the ``args`` column holds them: ``a=1 b=True``, sorted by key."""
    pairs = sorted(kwargs.items() if isinstance(kwargs, Mapping) else kwargs)
    return " ".join(f"{key}={format_literal(value)}" for key, value in pairs)


_ARG = re.compile(r'\s*([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_args_text(text: str, where: str = "args") -> tuple[tuple[str, Any], ...]:
    """``args_text`` read back: sorted (key, value) pairs."""
    pairs: dict[str, Any] = {}
    position = 0
    text = str(text)
    while position < len(text.rstrip()):
        if (match := _ARG.match(text, position)) is None:
            raise MbprofError(f"{where}: {text!r} is not a list of key=value builder arguments")
        key, value = match.group(1), match.group(2)
        if key in pairs:
            raise MbprofError(f"{where}: argument {key!r} is given twice in {text!r}")
        pairs[key] = read_literal(value)
        position = match.end()
    return tuple(sorted(pairs.items()))


def identity_row(spec: ModelSpec) -> dict[str, Any]:
    """The columns that name ``spec`` (``args`` and ``reparam`` only where it has them)."""
    row: dict[str, Any] = {
        "model": spec.model,
        "width": spec.width,
        "depth": spec.depth,
        "resolution": spec.res_label,
        "input_h": spec.resolution[0],
        "input_w": spec.resolution[1],
        "num_classes": spec.num_classes,
    }
    if spec.kwargs:
        row["args"] = args_text(spec.kwargs)
    if spec.reparam:
        row["reparam"] = True
    return row


def _number(row: Mapping[str, Any], key: str, where: str, default=None, integer=False) -> Any:
    """``row[key]`` as a number > 0 (``integer``: an integer >= 1); None when missing."""
    if (value := cell(row, key, default)) is None:
        return None
    what, least = ("an integer", ">= 1") if integer else ("a number", "> 0")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MbprofError(f"{where}: {key} {value!r} is not {what}") from None
    allowed = number.is_integer() and number >= 1 if integer else math.isfinite(number)
    if not allowed or number <= 0:
        raise MbprofError(f"{where}: {key} {value!r} is not allowed; it must be {what} {least}")
    return int(number) if integer else number


def spec_from_row(row: Mapping[str, Any], where: str = "row") -> ModelSpec:
    """The configuration a row measured (the model not looked up); ``where`` starts errors."""
    model = cell(row, "model")
    if not isinstance(model, str) or not model.strip():
        raise MbprofError(f"{where}: no 'model' column; is this an mbprof compare result?")
    height, width = (_number(row, k, where, integer=True) for k in ("input_h", "input_w"))
    if height is None or width is None:
        label = cell(row, "resolution")
        if label is None:
            raise MbprofError(f"{where}: no 'resolution' (or 'input_h' and 'input_w') column")
        label = int(label) if isinstance(label, float) and label.is_integer() else label
        try:
            height, width = parse_resolution(str(label), "resolution")
        except MbprofError as exc:
            raise MbprofError(f"{where}: {exc}") from None
    args = cell(row, "args")
    return ModelSpec(
        model=model.strip(),
        width=_number(row, "width", where, 1.0),
        depth=_number(row, "depth", where, 1.0),
        resolution=(height, width),
        num_classes=_number(row, "num_classes", where, integer=True) or 1000,
        kwargs=parse_args_text(str(args), f"{where}: args") if args is not None else (),
        reparam=str(cell(row, "reparam", False)).lower() in ("true", "1", "1.0"),
    )


def row_measures(row: Mapping[str, Any], spec: ModelSpec) -> bool:
    """Whether ``row`` measured ``spec`` (multipliers compared to 1e-9)."""
    try:
        other = spec_from_row(row)
    except MbprofError:
        return False
    same = [getattr(other, k) == getattr(spec, k) for k in ("model", "resolution", "num_classes")]
    same += [other.reparam == spec.reparam, dict(other.kwargs) == dict(spec.kwargs)]
    same += [
        math.isclose(getattr(other, k), getattr(spec, k), rel_tol=1e-9) for k in ("width", "depth")
    ]
    return all(same)


def count_columns(counts: CountReport, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The counts of one configuration, and its ``notes`` then the counts' own in one cell."""
    row = {"madds": counts.madds, "params": counts.params, "other_flops": counts.other_flops}
    row["engine"] = counts.engine
    if counts.params_used is not None:
        row["params_used"] = counts.params_used
    if notes or counts.notes:
        row["notes"] = "; ".join((*notes, *counts.notes))
    return row


def memory_columns(report: MemoryReport) -> dict[str, Any]:
    """Peak activation memory, materialized and memory-efficient (``mbprof.analysis.memory``)."""
    return {
        "peak_act_bytes": report.peak.live_bytes,
        "peak_act_bytes_efficient": report.peak_efficient.live_bytes,
        "max_tensor_bytes": report.max_tensor_bytes,
        "mem_dtype": report.dtype,
        "mem_chunks": report.chunks_label,
    }


def environment_columns(env: Environment) -> dict[str, Any]:
    return {key: getattr(env, key) for key in ENVIRONMENT_COLUMNS}


def latency_columns(timing: Timing) -> dict[str, Any]:
    """A timing's figures (``LATENCY_FIGURES``) and its environment."""
    named = {"latency_verdict": "verdict", "latency_reasons": "reasons"}
    figures = {key: getattr(timing, named.get(key, key)) for key in LATENCY_FIGURES}
    figures["latency_reasons"] = "; ".join(timing.reasons) or None
    # The deployment figures only where this backend measured them.
    figures |= {k: v for k in DEPLOYMENT_FIGURES if (v := getattr(timing, k)) is not None}
    return {**figures, **environment_columns(timing.environment)}


def failure_text(exc: BaseException) -> str:
    """An ``error`` cell: the exception's type and first line (a ``ModelRunError``'s cause)."""
    if isinstance(exc, ModelRunError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = type(exc).__name__ + (f": {first}" if (first := first_line(exc)) else "")
    return text if len(text) <= FAILURE_TEXT_MAX else text[: FAILURE_TEXT_MAX - 3] + "..."


def read_frame(path: str | Path) -> pd.DataFrame:
    """A frame written by mbprof: CSV, or the first table of a JSON document."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MbprofError(f"{str(path)!r} does not exist")
    try:
        if path.suffix.lower() != ".json":
            return pd.read_csv(path)
        payload = json.loads(path.read_text(encoding="utf-8"))
        if tables := payload.get("tables") if isinstance(payload, dict) else None:
            return pd.DataFrame(next(iter(tables.values())))
    except ValueError as exc:  # (a UnicodeDecodeError and pandas' ParserError are ValueErrors)
        raise MbprofError(f"{str(path)!r} cannot be read as CSV or JSON: {exc}") from None
    raise MbprofError(f"{str(path)!r} is not an mbprof JSON result (no 'tables')")
