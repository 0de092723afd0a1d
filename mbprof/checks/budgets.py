"""Budgets: limits on what a configuration may cost, read from a TOML file and checked
against measured rows (the columns of a comparison frame, see ``mbprof.frame.columns``).

Pure: parsing turns text into ``Budget`` records, checking turns records and rows into
``Result`` records; nothing here measures, builds a model or imports torch. The file is
read as data only (``tomllib``): nothing in it is executed or imported here, and a model
given as an import path is refused before anything imports it unless the caller allows
its module (``mbprof.checks.measuring.check_specs``, ``allow_import``).

A budget file::

    [[budget]]
    name = "phone"                 # optional label
    model = "mobilenet_v2"         # required: a registered model (or "pkg.module:callable",
                                   #   imported only when its module is allowed)
    width = 1.0                    # optional: width, depth (1.0), resolution (224 or
    resolution = 224               #   "160x224"), classes (1000), args (a table)
    max_madds = "310M"             # counts: K = 1e3, M = 1e6, G = 1e9
    max_params = "3.6M"
    max_peak_memory = { limit = "2.5 MB", dtype = "fp16", mode = "efficient" }
    max_latency = { limit = "25 ms", device = "cpu", threads = 2, tolerance = "10%" }

``max_peak_memory`` and ``max_latency`` take a limit alone (``"2.5 MB"``: fp16,
materialized; ``"25 ms"``: CPU, eager) or a table with the limit and its settings, or an
array of such tables (several settings for one configuration).

How a limit is judged: ``measured <= limit`` holds; ``limit < measured <= limit x (1 +
tolerance)`` is *tolerated* (passes, with a warning); above that it is *exceeded*.
Headroom is ``limit - measured`` (negative when over), and as a share of the limit.
Only latency takes a tolerance in a budget file (counts and memory are exact); baselines
(``mbprof.checks.baseline``) give every metric one.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.parsing import (
    MAX_BATCH,
    MAX_MIN_TIME_S,
    MAX_THREADS,
    MAX_WARMUP,
    MIN_RESOLUTION,
    parse_kwargs,
    parse_resolution,
)
from mbprof.core.records import ModelSpec
from mbprof.core.settings import (
    BACKENDS,
    CHUNKS_PER_CHANNEL,
    DEVICES,
    LATENCY_DTYPES,
    MEM_DTYPES,
    MEM_MODES,
    parse_chunks,
)
from mbprof.core.units import (
    format_bytes,
    format_count,
    format_ms,
    format_percent,
    parse_bytes,
    parse_count,
    parse_ms,
    parse_percent,
)

DEFAULT_MEM_DTYPE = "fp16"
DEFAULT_MEM_MODE = "materialized"
DEFAULT_LATENCY_TOLERANCE_PCT = 10.0

# Statuses of a checked limit, from best to worst.
HELD, TOLERATED, EXCEEDED, ERROR = "held", "tolerated", "exceeded", "error"
PASSING = (HELD, TOLERATED)


class BudgetFileError(MbprofError):
    """A budget file that cannot be read: the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str = "", line: int | None = None) -> None:
        where = f"{source}:{line}: " if line else (f"{source}: " if source else "")
        super().__init__(where + message)
        self.source = source
        self.line = line
        self.reason = message


@dataclass(frozen=True)
class Metric:
    key: str  # the budget file key, e.g. "max_madds"
    label: str  # shown to people
    kind: str  # "count", "bytes" or "ms": how limits are parsed and printed
    what: str  # what the measured figure counts


METRICS: dict[str, Metric] = {
    "max_madds": Metric(
        "max_madds", "MAdds", "count", "multiply-accumulates of conv and FC layers, batch 1"
    ),
    "max_params": Metric("max_params", "Params", "count", "parameter tensor elements"),
    "max_peak_memory": Metric(
        "max_peak_memory",
        "Peak activations",
        "bytes",
        "peak bytes of live activations over one forward pass, batch 1, input image not "
        "counted: materialized, or memory-efficient (inverted residuals in T chunks; "
        "mbprof memory explains both); KB = 1000 bytes",
    ),
    "max_latency": Metric(
        "max_latency",
        "Latency",
        "ms",
        "median wall time of one forward pass of a batch on this machine, under the "
        "settings shown (mbprof bench explains the harness)",
    ),
}

CONFIG_KEYS = ("name", "model", "width", "depth", "resolution", "classes", "args")
BUDGET_KEYS = CONFIG_KEYS + tuple(METRICS)
MEMORY_KEYS = ("limit", "dtype", "mode", "chunks")
LATENCY_KEYS = (
    "limit",
    "tolerance",
    "device",
    "backend",
    "threads",
    "batch",
    "dtype",
    "channels_last",
    "fuse_bn",
    "min_time",
    "warmup",
)
# Latency settings that say what was measured (the others only say how long to measure).
LATENCY_IDENTITY = ("device", "backend", "threads", "batch", "dtype", "channels_last", "fuse_bn")


def _parse_limit_value(kind: str, value: Any, what: str) -> float:
    parse = {"count": parse_count, "bytes": parse_bytes, "ms": parse_ms}[kind]
    return parse(value, what)


def format_amount(kind: str, value: float | None) -> str:
    """A measured or limit value in its metric's unit: '300.77M', '1.2 MB', '25.00 ms'."""
    if kind == "count":
        return format_count(value)
    if kind == "bytes":
        return format_bytes(value, digits=2)
    return format_ms(value)


@dataclass(frozen=True)
class Limit:
    """One limit on one metric, with the settings it is measured under.

    ``settings`` holds, for memory: dtype, mode and chunks (T; None: one channel a chunk); for
    latency: device, backend, threads, batch, dtype, channels_last, fuse_bn (None when not
    given: the measuring code's default) and min_time_ms, warmup.
    """

    key: str  # a key of METRICS
    value: float  # counts and bytes as integers, latency in ms
    text: str  # as written in the file
    line: int | None = None
    tolerance_pct: float = 0.0
    settings: tuple[tuple[str, Any], ...] = ()
    origin: str = "budget"  # "budget" (a file's limit) or "baseline" (a saved figure)

    @property
    def name(self) -> str:
        """What people read: the budget key (max_madds), or the column for a baseline."""
        return self.key if self.origin == "budget" else self.column

    @property
    def metric(self) -> Metric:
        return METRICS[self.key]

    def setting(self, name: str, default: Any = None) -> Any:
        return dict(self.settings).get(name, default)

    @property
    def column(self) -> str:
        """The frame column that holds the measured figure."""
        if self.key == "max_madds":
            return "madds"
        if self.key == "max_params":
            return "params"
        if self.key == "max_peak_memory":
            efficient = self.setting("mode") == "efficient"
            return "peak_act_bytes_efficient" if efficient else "peak_act_bytes"
        return "latency_ms"

    @property
    def allowed(self) -> float:
        """The largest measured value that passes: the limit plus its tolerance."""
        return self.value * (1.0 + self.tolerance_pct / 100.0)

    @property
    def conditions(self) -> str:
        """The settings in words: 'fp16, efficient' or 'cpu, eager, 2 threads'."""
        if self.key == "max_peak_memory":
            parts = [self.setting("dtype"), self.setting("mode")]
            if self.setting("mode") == "efficient":
                parts.append(f"T={self.setting('chunks') or CHUNKS_PER_CHANNEL}")
            return ", ".join(str(p) for p in parts)
        if self.key == "max_latency":
            parts = [self.setting("device"), self.setting("backend"), self.setting("dtype")]
            if self.setting("batch") is not None:
                parts.append(f"batch {self.setting('batch')}")
            threads = self.setting("threads")
            if threads is not None:
                parts.append(f"{threads} thread{'' if threads == 1 else 's'}")
            if self.setting("channels_last"):
                parts.append("channels-last")
            if self.setting("fuse_bn"):
                parts.append("fused BN")
            return ", ".join(str(p) for p in parts if p is not None)
        return ""


@dataclass(frozen=True)
class Budget:
    """One configuration and its limits, with where it was written."""

    spec: ModelSpec
    limits: tuple[Limit, ...]
    source: str = ""
    line: int | None = None
    name: str = ""
    index: int = 1
    key_lines: tuple[tuple[str, int], ...] = ()  # where each key is written
    from_rows: bool = False  # a row of a results file (a baseline), ``index`` its number

    def line_of(self, key: str = "") -> int | None:
        """The line of ``key`` (or of its nearest written parent, or of the header)."""
        return _nearest_line(dict(self.key_lines), key) or self.line

    @property
    def label(self) -> str:
        return f"{self.name} ({self.spec.label})" if self.name else self.spec.label

    def error(self, message: str, key: str = "") -> MbprofError:
        """A refusal that points where ``key`` was written: ``FILE:LINE: budget N, key: ...``
        for a budget file (a ``BudgetFileError``), ``FILE row N: ...`` for a baseline row."""
        if self.from_rows:
            return MbprofError(f"{self.source} row {self.index}: {message}")
        where = f"budget {self.index}, {key}" if key else f"budget {self.index}"
        return BudgetFileError(f"{where}: {message}", self.source, self.line_of(key))


@dataclass(frozen=True)
class BudgetFile:
    source: str
    budgets: tuple[Budget, ...]


@dataclass(frozen=True)
class Result:
    """A limit checked against a measurement."""

    budget: Budget
    limit: Limit
    measured: float | None
    status: str  # HELD, TOLERATED, EXCEEDED or ERROR
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.status in PASSING

    @property
    def headroom(self) -> float | None:
        """limit - measured, in the metric's unit (negative when over the limit)."""
        return None if self.measured is None else self.limit.value - self.measured

    @property
    def headroom_pct(self) -> float | None:
        """The headroom as a percentage of the limit."""
        if self.headroom is None or self.limit.value == 0:
            return None
        return 100.0 * self.headroom / self.limit.value

    @property
    def where(self) -> str:
        line = self.limit.line or self.budget.line
        if line:
            return f"{self.budget.source}:{line}"
        if self.limit.origin == "baseline":
            return f"{self.budget.source} row {self.budget.index}"
        return self.budget.source

    @property
    def configuration(self) -> str:
        cond = self.limit.conditions
        return f"{self.budget.label} [{cond}]" if cond else self.budget.label

    @property
    def message(self) -> str:
        """One sentence: the metric, the configuration, the figures."""
        kind = self.limit.metric.kind
        name = self.limit.name
        ref = "baseline" if self.limit.origin == "baseline" else "limit"
        limit = format_amount(kind, self.limit.value)
        if self.status == ERROR:
            return f"{self.configuration}: {name} could not be measured: {self.error}"
        measured = format_amount(kind, self.measured)
        tol = format_percent(self.limit.tolerance_pct)
        if self.status in (EXCEEDED, TOLERATED):
            over = format_amount(kind, -self.headroom)
            pct = format_percent(-self.headroom_pct)
            verb = "regressed" if ref == "baseline" else "exceeded"
            if self.status == TOLERATED:
                verb = "over its " + ref + " within tolerance"
            tail = f", tolerance {tol}" if self.limit.tolerance_pct else ""
            return (
                f"{self.configuration}: {name} {verb}: measured {measured} > {ref} {limit} "
                f"by {over} ({pct}){tail}"
            )
        room = format_amount(kind, self.headroom)
        return (
            f"{self.configuration}: {name} held: measured {measured} <= {ref} {limit}, "
            f"headroom {room} ({format_percent(self.headroom_pct)})"
        )


# --- reading a budget file ---------------------------------------------------------------


def _closest(word: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


_HEADER = re.compile(r"\s*(\[\[|\[)\s*([A-Za-z0-9_.\"' -]+?)\s*(\]\]|\])")
_KEY = re.compile(r"\s*([A-Za-z0-9_.-]+|\"[^\"]*\"|'[^']*')\s*=")


class _Lines:
    """Where keys are written, for messages (tomllib gives values, not positions).

    A light scan of the text for table headers and ``key =`` at the start of lines; it
    never decides what a value is, it only points at a line.
    """

    def __init__(self, text: str) -> None:
        self.top: dict[str, int] = {}
        self.budgets: list[dict[str, int]] = []
        current: dict[str, int] | None = self.top
        prefix = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                name = header.group(2).replace('"', "").replace("'", "").replace(" ", "")
                if header.group(1) == "[[" and name == "budget":
                    current, prefix = {"": number}, ""
                    self.budgets.append(current)
                elif name.startswith("budget.") and self.budgets:
                    current, prefix = self.budgets[-1], name.removeprefix("budget.") + "."
                    current.setdefault(prefix[:-1], number)
                else:
                    current, prefix = self.top, name + "."
                    self.top.setdefault(name, number)
                continue
            key = _KEY.match(line)
            if key and current is not None:
                current.setdefault(prefix + key.group(1).strip("\"'"), number)

    def budget(self, index: int, key: str = "") -> int | None:
        """The line of ``key`` (dotted for nested tables) in the ``index``-th budget (0-based),
        or of its nearest written parent, or of the budget's header."""
        if index >= len(self.budgets):
            return None
        return _nearest_line(self.budgets[index], key)


def _nearest_line(lines: Mapping[str, int], key: str) -> int | None:
    """The line of ``key``, else of its nearest written parent ('a.b' -> 'a'), else of the
    table's header (key '')."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return lines.get("")


def _toml_error_line(message: str, text: str) -> tuple[int | None, str]:
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        reason = message[: match.start()].strip()
        return int(match.group(1)), f"{reason} at column {match.group(2)}"
    if "(at end of document)" in message:
        return max(1, len(text.splitlines())), message.replace(
            "(at end of document)", "at the end of the file"
        ).strip()
    return None, message


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Reader:
    """Turns the parsed TOML data of one file into budgets, naming file and line on error."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = _Lines(text)

    def fail(self, message: str, index: int | None = None, key: str = "") -> BudgetFileError:
        line = self.lines.budget(index, key) if index is not None else self.lines.top.get(key)
        where = f"budget {index + 1}" if index is not None else ""
        if index is not None and key:
            where += f", {key}"
        return BudgetFileError(f"{where}: {message}" if where else message, self.source, line)

    def expect(self, ok: bool, index: int, key: str, value: Any, expected: str) -> None:
        if not ok:
            raise self.fail(f"expected {expected}, got {_type_name(value)} {value!r}", index, key)

    def wrap(self, index: int, key: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except MbprofError as exc:
            message = str(exc)
            for prefix in (f"{key}: ", f"{key.rpartition('.')[2]}: "):
                message = message.removeprefix(prefix)
            raise self.fail(message, index, key) from None

    def unknown_keys(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], index: int, where: str
    ):
        for key in table:
            if key not in allowed:
                full = f"{where}.{key}" if where else key
                raise self.fail(
                    f"unknown key {key!r}{_closest(key, allowed)} (allowed: {', '.join(allowed)})",
                    index,
                    full,
                )

    # -- the configuration ----------------------------------------------------------------

    def number(self, table: Mapping[str, Any], key: str, index: int, default: float) -> float:
        value = table.get(key, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        self.expect(ok and math.isfinite(value) and value > 0, index, key, value, "a number > 0")
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        index: int,
        minimum: int,
        where: str = "",
        maximum: int | None = None,
    ):
        value = table.get(key)
        if value is None:
            return None
        full = f"{where}.{key}" if where else key
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        self.expect(ok, index, full, value, f"an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.fail(f"{value} is too large; give at most {maximum:,}", index, full)
        return value

    def choice(self, table: Mapping[str, Any], key: str, index: int, where: str, allowed: tuple):
        value = table.get(key)
        if value is None:
            return None
        if value not in allowed:
            raise self.fail(
                f"{value!r} is not allowed; expected one of {', '.join(allowed)}"
                f"{_closest(str(value), allowed) if isinstance(value, str) else ''}",
                index,
                f"{where}.{key}",
            )
        return value

    def chunks(self, table: Mapping[str, Any], index: int, where: str) -> int | None:
        """T, the chunks of the memory-efficient mode: an integer >= 1 or "channel" (the
        default: one channel a chunk), as mbprof memory --chunks takes it."""
        value = table.get("chunks")
        if value is None:
            return None
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        self.expect(
            ok, index, f"{where}.chunks", value, f'an integer >= 1 or "{CHUNKS_PER_CHANNEL}"'
        )
        return self.wrap(index, f"{where}.chunks", parse_chunks, value, "chunks")

    def boolean(self, table: Mapping[str, Any], key: str, index: int, where: str) -> bool | None:
        value = table.get(key)
        if value is None:
            return None
        self.expect(isinstance(value, bool), index, f"{where}.{key}", value, "true or false")
        return value

    def spec(self, table: Mapping[str, Any], index: int) -> ModelSpec:
        if "model" not in table:
            raise self.fail(
                "no 'model': name the model to check, e.g. model = \"mobilenet_v2\"", index
            )
        model = table["model"]
        self.expect(
            isinstance(model, str) and model.strip() != "",
            index,
            "model",
            model,
            "a model name (a non-empty string)",
        )
        width = self.number(table, "width", index, 1.0)
        depth = self.number(table, "depth", index, 1.0)
        res = table.get("resolution", 224)
        ok = (isinstance(res, int) and not isinstance(res, bool)) or isinstance(res, str)
        self.expect(
            ok,
            index,
            "resolution",
            res,
            f'an integer >= {MIN_RESOLUTION} or a string like "160x224"',
        )
        resolution = self.wrap(index, "resolution", parse_resolution, res, "resolution")
        classes = self.integer(table, "classes", index, 1)
        args = table.get("args", {})
        self.expect(
            isinstance(args, dict),
            index,
            "args",
            args,
            "a table of builder arguments, e.g. args = { dropout = 0.2 }",
        )
        for key, value in args.items():
            ok = isinstance(value, (str, int, float, bool))
            self.expect(ok, index, f"args.{key}", value, "a string, number or boolean")
            if not key.isidentifier():
                raise self.fail(f"{key!r} is not a Python identifier", index, f"args.{key}")
        return ModelSpec(
            model=model.strip(),
            width=width,
            depth=depth,
            resolution=resolution,
            num_classes=1000 if classes is None else classes,
            kwargs=tuple(sorted(args.items())),
        )

    # -- the limits -----------------------------------------------------------------------

    def limit_value(self, value: Any, index: int, key: str, metric: Metric) -> tuple[float, str]:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        examples = {"count": '"300M"', "bytes": '"1.2 MB"', "ms": '"25 ms"'}[metric.kind]
        self.expect(ok, index, key, value, f"a limit such as {examples}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{value!r} is not a finite limit", index, key)
        number = self.wrap(index, key, _parse_limit_value, metric.kind, value, "limit")
        if number <= 0:
            raise self.fail(f"{value!r} is not allowed; a limit must be > 0", index, key)
        return number, str(value)

    def memory_limit(self, entry: Any, index: int, key: str) -> Limit:
        metric = METRICS["max_peak_memory"]
        if not isinstance(entry, dict):
            value, text = self.limit_value(entry, index, key, metric)
            entry = {}
        else:
            self.unknown_keys(entry, MEMORY_KEYS, index, key)
            if "limit" not in entry:
                raise self.fail("no 'limit' in the table, e.g. limit = \"1.2 MB\"", index, key)
            value, text = self.limit_value(entry["limit"], index, f"{key}.limit", metric)
        settings = (
            ("dtype", self.choice(entry, "dtype", index, key, MEM_DTYPES) or DEFAULT_MEM_DTYPE),
            ("mode", self.choice(entry, "mode", index, key, MEM_MODES) or DEFAULT_MEM_MODE),
            ("chunks", self.chunks(entry, index, key)),
        )
        return Limit(key, value, text, self.lines.budget(index, key), 0.0, settings)

    def latency_limit(self, entry: Any, index: int, key: str) -> Limit:
        metric = METRICS["max_latency"]
        tolerance = DEFAULT_LATENCY_TOLERANCE_PCT
        if not isinstance(entry, dict):
            value, text = self.limit_value(entry, index, key, metric)
            entry = {}
        else:
            self.unknown_keys(entry, LATENCY_KEYS, index, key)
            if "limit" not in entry:
                raise self.fail("no 'limit' in the table, e.g. limit = \"25 ms\"", index, key)
            value, text = self.limit_value(entry["limit"], index, f"{key}.limit", metric)
            if "tolerance" in entry:
                tolerance = self.wrap(
                    index, f"{key}.tolerance", parse_percent, entry["tolerance"], "tolerance"
                )
        min_time = entry.get("min_time")
        if min_time is not None:
            ok = isinstance(min_time, (str, int, float)) and not isinstance(min_time, bool)
            self.expect(ok, index, f"{key}.min_time", min_time, 'a duration such as "0.5 s"')
            min_time = self.wrap(index, f"{key}.min_time", parse_ms, min_time, "min_time")
            if not (math.isfinite(min_time) and min_time > 0):
                raise self.fail(f"{entry['min_time']!r} must be > 0", index, f"{key}.min_time")
            if min_time > MAX_MIN_TIME_S * 1000:  # the bound --min-time has
                raise self.fail(
                    f"{entry['min_time']!r} is too long; give at most {MAX_MIN_TIME_S:g} s",
                    index,
                    f"{key}.min_time",
                )
        settings = (
            ("device", self.choice(entry, "device", index, key, DEVICES) or "cpu"),
            ("backend", self.choice(entry, "backend", index, key, BACKENDS) or "eager"),
            # A fixed bound here: checking saved results (--results) needs no CPUs; measuring
            # refuses more threads than this machine's logical CPUs, as --threads does.
            ("threads", self.integer(entry, "threads", index, 1, key, MAX_THREADS)),
            ("batch", self.integer(entry, "batch", index, 1, key, MAX_BATCH) or 1),
            ("dtype", self.choice(entry, "dtype", index, key, LATENCY_DTYPES) or "fp32"),
            ("channels_last", bool(self.boolean(entry, "channels_last", index, key))),
            ("fuse_bn", bool(self.boolean(entry, "fuse_bn", index, key))),
            ("min_time_ms", min_time),
            ("warmup", self.integer(entry, "warmup", index, 0, key, MAX_WARMUP)),
        )
        return Limit(key, value, text, self.lines.budget(index, key), tolerance, settings)

    def limits(self, table: Mapping[str, Any], index: int) -> list[Limit]:
        limits: list[Limit] = []
        for key, value in table.items():  # in the file's order
            if key not in METRICS:
                continue
            metric = METRICS[key]
            if metric.kind == "count":
                number, text = self.limit_value(value, index, key, metric)
                limits.append(Limit(key, number, text, self.lines.budget(index, key)))
                continue
            entries = value if isinstance(value, list) else [value]
            if not entries:
                raise self.fail("an empty array; give at least one limit", index, key)
            read = self.memory_limit if key == "max_peak_memory" else self.latency_limit
            limits += [read(entry, index, key) for entry in entries]
        if not limits:
            raise self.fail(f"sets no limit; give at least one of {', '.join(METRICS)}", index)
        return limits

    def budget(self, table: Any, index: int) -> Budget:
        if not isinstance(table, dict):
            raise self.fail(f"expected a table, got {_type_name(table)}", index)
        self.unknown_keys(table, BUDGET_KEYS, index, "")
        name = table.get("name", "")
        self.expect(isinstance(name, str), index, "name", name, "a string")
        return Budget(
            spec=self.spec(table, index),
            limits=tuple(self.limits(table, index)),
            source=self.source,
            line=self.lines.budget(index),
            name=name.strip(),
            index=index + 1,
            key_lines=tuple(self.lines.budgets[index].items())
            if index < len(self.lines.budgets)
            else (),
        )

    def read(self, data: Mapping[str, Any]) -> BudgetFile:
        for key in data:
            if key != "budget":
                raise self.fail(
                    f"unknown key {key!r} (a budget file holds [[budget]] tables)"
                    + _closest(key, ["budget"]),
                    key=key,
                )
        tables = data.get("budget")
        if tables is None:
            raise BudgetFileError(
                "no [[budget]] tables; see examples/budgets.toml for the form", self.source
            )
        if not isinstance(tables, list):
            raise self.fail("'budget' must be an array of tables: write [[budget]]", key="budget")
        return BudgetFile(self.source, tuple(self.budget(t, i) for i, t in enumerate(tables)))


def _tomllib() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    return tomllib


def parse_budgets(text: str, source: str = "<budgets>") -> BudgetFile:
    """Budgets from the text of a TOML budget file; ``BudgetFileError`` names file, line
    and key of the first problem. Model names and ranges are checked later, by
    ``mbprof.checks.measuring.check_specs``, which knows the registry."""
    tomllib = _tomllib()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, reason = _toml_error_line(str(exc), text)
        raise BudgetFileError(f"not valid TOML: {reason}", source, line) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise BudgetFileError(
            "arrays or tables are nested too deeply to read; a budget file needs a few levels",
            source,
            _deep_line(text),
        ) from None
    return _Reader(text, source).read(data)


def _deep_line(text: str, depth: int = 100) -> int | None:
    """The line where brackets and braces first nest ``depth`` deep (a rough count that
    skips quoted strings and comments: it only points at a line)."""
    level, quote = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        escaped = False
        for char in line:
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\" and quote == '"':
                    escaped = True
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                level += 1
                if level >= depth:
                    return number
            elif char in "]}":
                level = max(0, level - 1)
    return None


def load_budgets(path: str | Path) -> BudgetFile:
    """Read and parse a budget file (as data only)."""
    path = Path(path)
    if not path.exists():
        raise BudgetFileError("no such file; give the path of a TOML budget file", str(path))
    if not path.is_file():
        raise BudgetFileError("is not a file; give the path of a TOML budget file", str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BudgetFileError(
            f"is not UTF-8 text (byte {exc.start}); a budget file is TOML", str(path)
        ) from None
    except OSError as exc:
        raise BudgetFileError(f"cannot be read: {exc.strerror}", str(path)) from None
    return parse_budgets(text, str(path))


# --- checking measured rows --------------------------------------------------------------


def cell(row: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``row[key]`` as a plain Python value; ``default`` when absent, None or NaN."""
    value = row.get(key, default)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _same_number(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def row_spec_matches(row: Mapping[str, Any], spec: ModelSpec) -> bool:
    """Whether a frame row measured ``spec`` (model, width, depth, input size, classes, args)."""
    if cell(row, "model") != spec.model:
        return False
    if not (_same_number(cell(row, "width", 1.0), spec.width)):
        return False
    if not _same_number(cell(row, "depth", 1.0), spec.depth):
        return False
    height, width = cell(row, "input_h"), cell(row, "input_w")
    if height is None or width is None:
        try:
            height, width = parse_resolution(str(cell(row, "resolution", "")), "resolution")
        except MbprofError:
            return False
    if (int(height), int(width)) != spec.resolution:
        return False
    if int(cell(row, "num_classes", 1000)) != spec.num_classes:
        return False
    args = str(cell(row, "args", "") or "")
    try:
        pairs = parse_kwargs(args.split()) if args else ()
    except MbprofError:
        return False
    return dict(pairs) == dict(spec.kwargs)


def _settings_match(row: Mapping[str, Any], limit: Limit) -> bool:
    if limit.key == "max_peak_memory":
        if cell(row, "mem_dtype") not in (None, limit.setting("dtype")):
            return False
        if limit.setting("mode") != "efficient":
            return True  # the materialized peak does not depend on T
        have = cell(row, "mem_chunks")
        wanted = limit.setting("chunks") or CHUNKS_PER_CHANNEL
        return have is None or str(have) == str(wanted)
    if limit.key == "max_latency":
        for name in LATENCY_IDENTITY:
            wanted = limit.setting(name)
            if wanted is None or (name == "device" and wanted == "auto"):
                continue
            if name == "channels_last" and "memory_format" in row:
                have = cell(row, "memory_format")
                if have is not None and (have == "channels_last") != wanted:
                    return False
                continue
            have = cell(row, name)
            if have is None:
                continue  # a frame without the column: nothing to contradict
            if isinstance(wanted, bool) or isinstance(have, bool):
                if bool(have) != wanted:
                    return False
            elif str(have) != str(wanted) and not _same_number(have, wanted):
                return False
    return True


def find_row(
    rows: Iterable[Mapping[str, Any]], spec: ModelSpec, limit: Limit
) -> Mapping[str, Any] | None:
    """The first row that measured ``spec`` under the limit's settings and has its figure
    (or an error for it); None when no row fits."""
    fallback = None
    for row in rows:
        if not (row_spec_matches(row, spec) and _settings_match(row, limit)):
            continue
        if cell(row, limit.column) is not None:
            return row
        if fallback is None and cell(row, "error"):
            fallback = row
    return fallback


def judge(limit: Limit, measured: float) -> str:
    if measured <= limit.value:
        return HELD
    if measured <= limit.allowed:
        return TOLERATED
    return EXCEEDED


def check_budget(budget: Budget, rows: list[Mapping[str, Any]]) -> list[Result]:
    results = []
    for limit in budget.limits:
        row = find_row(rows, budget.spec, limit)
        if row is None:
            cond = f" [{limit.conditions}]" if limit.conditions else ""
            where = f"{budget.source}:{limit.line}: " if limit.line else f"{budget.source}: "
            raise MbprofError(
                f"{where}no measurement of {limit.column} for {budget.spec.label}{cond}; "
                "the results do not cover this budget"
            )
        measured = cell(row, limit.column)
        if measured is None:
            results.append(Result(budget, limit, None, ERROR, str(cell(row, "error"))))
        else:
            results.append(Result(budget, limit, measured, judge(limit, measured)))
    return results


def check(budgets: BudgetFile | Iterable[Budget], rows: Any) -> list[Result]:
    """Every limit of ``budgets`` against the measured ``rows`` (a list of dicts or a frame
    with the columns of ``mbprof.frame.columns``). Raises ``MbprofError`` when no row measured a
    budget's configuration."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict(orient="records")
    rows = list(rows)
    items = budgets.budgets if isinstance(budgets, BudgetFile) else budgets
    return [result for budget in items for result in check_budget(budget, rows)]


def violations(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if not r.passed]
