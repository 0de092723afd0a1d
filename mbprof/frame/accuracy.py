"""Published ImageNet accuracy (``mbprof/data/accuracy.csv``) joined to a comparison's rows:
each row's figures from its source of lowest ``priority`` (a user's ``--accuracy`` file first)."""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import parse_resolution
from mbprof.core.records import ModelSpec
from mbprof.frame.rows import args_text, cell, is_missing, parse_args_text, spec_from_row

if TYPE_CHECKING:
    import pandas as pd

DATA_FILE = Path(__file__).parent.parent / "data" / "accuracy.csv"
REQUIRED = ("model", "width", "depth", "resolution", "top1")
JOINED = ("top1", "top5", "accuracy_source", "phone_latency_ms", "phone_latency_device")
USER_PRIORITY = 0  # a user's file comes before every shipped source

Key = tuple[str, float, float, str, str]


@dataclass(frozen=True)
class Published:
    """One source's figures for one configuration."""

    model: str
    width: float
    depth: float
    resolution: str  # "224", or "160x224" (height x width)
    args: str  # builder arguments as `compare` prints them, "" for none
    top1: float
    top5: float | None
    source: str
    priority: int
    phone_latency_ms: float | None = None
    phone_latency_device: str | None = None

    @property
    def key(self) -> Key:  # as ``key_of`` makes it: the fields are read normalized
        return (self.model, round(self.width, 6), round(self.depth, 6), self.resolution, self.args)


def key_of(spec: ModelSpec) -> Key:
    """The identity of a configuration for accuracy (multipliers to 6 decimals, no class count)."""
    kwargs = args_text(spec.kwargs)
    return (spec.model, round(spec.width, 6), round(spec.depth, 6), spec.res_label, kwargs)


class AccuracyTable(dict[Key, list[Published]]):
    """Published figures by configuration (``key_of``), each key's sources in order of priority."""

    def __init__(self, entries: Iterable[Published]) -> None:
        super().__init__()
        for e in entries:
            self.setdefault(e.key, []).append(e)
        for sources in self.values():
            sources.sort(key=lambda e: e.priority)

    def entries(self) -> list[Published]:
        return [e for sources in self.values() for e in sources]

    def all_sources(self, spec: ModelSpec) -> list[Published]:
        """Every source's figures for the configuration ``spec``, the preferred one first."""
        return list(self.get(key_of(spec), []))

    def lookup_spec(self, spec: ModelSpec) -> Published | None:
        return self.get(key_of(spec), [None])[0]


def _number(text: Any, what: str, where: str, low: float, high: float, optional=False) -> Any:
    """``text`` as a number in [low, high]; None for an empty ``optional`` cell."""
    if optional and not (text := (text or "").strip()):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise MbprofError(f"{where}: {what} {text!r} is not a number between {low:g} and {high:g}")
    return value


def _entry(row: Mapping[str, str], where: str, default_source: str, priority: int) -> Published:
    if not (model := (row.get("model") or "").strip()):
        raise MbprofError(f"{where}: the model is empty")
    width, depth = (_number(row[k], k, where, 1e-6, 1e3) for k in ("width", "depth"))
    try:
        height, across = parse_resolution(row["resolution"].strip(), f"{where}: resolution")
    except AttributeError:
        raise MbprofError(f"{where}: the resolution is empty") from None
    own = _number(row.get("priority"), "priority", where, 0, 99, optional=True)
    args = row.get("args")  # 'a=True' and 'a=true, b=1' are read alike
    return Published(
        model=model,
        width=width,
        depth=depth,
        resolution=str(height) if height == across else f"{height}x{across}",
        args="" if is_missing(args) else args_text(parse_args_text(str(args).replace(",", " "))),
        top1=_number(row["top1"], "top1", where, 0, 100),
        top5=_number(row.get("top5"), "top5", where, 0, 100, optional=True),
        source=(row.get("source") or "").strip() or default_source,
        priority=priority if own is None else int(own),
        phone_latency_ms=_number(
            row.get("phone_latency_ms"), "latency", where, 0, 1e7, optional=True
        ),
        phone_latency_device=(row.get("phone_latency_device") or "").strip() or None,
    )


def read_accuracy_csv(
    path: str | Path, option: str = "--accuracy", priority: int = USER_PRIORITY
) -> AccuracyTable:
    """Read and check an accuracy file; the first problem refused, naming the file."""
    path = Path(path)
    file = f"{option}: {str(path)!r}"
    if not path.is_file():
        raise MbprofError(f"{file} does not exist or is not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            if missing := [c for c in REQUIRED if c not in columns]:
                raise MbprofError(
                    f"{file} has no column {', '.join(missing)}; an accuracy file needs the "
                    f"columns {', '.join(REQUIRED)} (optional: top5, source)"
                )
            reader.fieldnames = columns
            entries, seen = [], {}
            for line, row in enumerate(reader, start=2):
                where = f"{option}: {path.name} line {line}"
                entry = _entry(row, where, f"user file {path.name}", priority)
                ident = (entry.key, entry.priority)
                if ident in seen:
                    raise MbprofError(
                        f"{where} gives {entry.model} {entry.width:g}@{entry.resolution} "
                        f"(depth {entry.depth:g}) again, already on line {seen[ident]}; "
                        "keep one row per configuration"
                    )
                seen[ident] = line
                entries.append(entry)
    except UnicodeDecodeError:
        raise MbprofError(f"{file} is not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise MbprofError(f"{file} cannot be read as CSV: {exc}") from None
    if not entries:
        raise MbprofError(f"{file} has a header but no rows")
    return AccuracyTable(entries)


@functools.cache
def shipped() -> AccuracyTable:
    return read_accuracy_csv(DATA_FILE, option="shipped accuracy data", priority=9)


def accuracy_table(user_file: str | Path | None = None) -> AccuracyTable:
    """The shipped figures, with ``user_file``'s (if given) put first."""
    if user_file is None:
        return shipped()
    return AccuracyTable([*read_accuracy_csv(user_file).entries(), *shipped().entries()])


def join(frame: pd.DataFrame, table: AccuracyTable | None = None) -> pd.DataFrame:
    """``frame`` with the ``JOINED`` columns (unchanged when no row has a published figure)."""
    import pandas as pd

    table = shipped() if table is None else table
    if frame.empty or not {"model", "width", "resolution"} <= set(frame.columns):
        return frame
    rows = frame.to_dict(orient="records")
    specs = [spec_from_row(r, "accuracy") if cell(r, "model") is not None else None for r in rows]
    found = [table.lookup_spec(spec) if spec is not None else None for spec in specs]
    if not any(found):
        return frame
    named = {key: "source" if key == "accuracy_source" else key for key in JOINED}
    joined = [{k: getattr(e, a) if e else None for k, a in named.items()} for e in found]
    added = pd.DataFrame(joined, index=frame.index, columns=list(JOINED))
    for key in ("top1", "top5", "phone_latency_ms"):
        added[key] = pd.to_numeric(added[key]).astype(float)
    kept = frame.drop(columns=[c for c in JOINED if c in frame.columns])
    return pd.concat([kept, added], axis=1)


def check_plottable(table: AccuracyTable | None, specs: Iterable[Any], option: str) -> None:
    """Refuse, before any counting, a top-1 plot of configurations none of which has one."""
    specs = list(specs)
    if table is not None and any(table.lookup_spec(s) for s in specs):
        return
    known = sorted({e.model for e in (shipped() if table is None else table).entries()})
    raise MbprofError(
        f"{option}: none of these {len(specs)} configurations has a published top-1 to plot "
        f"(mbprof ships figures for {', '.join(known)} at their published widths and "
        "resolutions); add --accuracy FILE.csv with your own"
    )
