"""Budget files (docs/budgets.md) read as data only into ``Budget`` records, each refusal naming
file, line and key (tomllib gives no positions: a light scan of the text points at lines)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mbprof.checks.limits import (
    LATENCY_IDENTITY,
    Budget,
    BudgetFile,
    BudgetFileError,
    Limit,
    latency_settings,
    nearest_line,
)
from mbprof.core import parsing
from mbprof.core import settings as choices
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.units import parse_bytes, parse_count, parse_ms, parse_percent
from mbprof.frame.columns import METRICS

BUDGET_KEYS = ("name", "model", "width", "depth", "resolution", "classes", "args", "reparam")
BUDGET_KEYS += tuple(METRICS)
# A limit written as a table: its keys, and a limit for the example.
TABLE_KEYS = {
    "max_peak_memory": (("limit", "dtype", "mode", "chunks"), "1.2 MB"),
    "max_latency": (("limit", "tolerance", *LATENCY_IDENTITY, "min_time", "warmup"), "25 ms"),
    "max_model_size": (("limit", "backend", "quantize"), "4 MB"),
}
# What a limit's table may set, each checked by its rule: bool, (lowest, highest) integers,
# or the values allowed. Threads have a fixed bound: checking saved results (--results) needs
# no CPUs; measuring refuses more threads than this machine's logical CPUs, as --threads does.
_LATENCY = dict(device=choices.DEVICES, backend=choices.BACKENDS, threads=(1, parsing.MAX_THREADS))
_LATENCY |= dict(batch=(1, parsing.MAX_BATCH), dtype=choices.LATENCY_DTYPES, channels_last=bool)
_LATENCY |= dict(fuse_bn=bool, warmup=(0, parsing.MAX_WARMUP), quantize=choices.QUANTIZE)
_MEMORY = dict(dtype=choices.MEM_DTYPES, mode=choices.MEM_MODES)
_SIZE = dict(backend=choices.INT8_BACKENDS, quantize=choices.QUANTIZE)
SETTINGS = {"max_peak_memory": _MEMORY, "max_latency": _LATENCY, "max_model_size": _SIZE}
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
_TYPE_NAMES |= {list: "an array", dict: "a table"}


_HEADER = re.compile(r"\s*(\[\[|\[)\s*([A-Za-z0-9_.\"' -]+?)\s*(\]\]|\])")
_KEY = re.compile(r"\s*([A-Za-z0-9_.-]+|\"[^\"]*\"|'[^']*')\s*=")


def key_lines(text: str) -> tuple[dict[str, int], list[dict[str, int]]]:
    """Where top-level keys and each budget's keys are written (it only points at a line)."""
    top: dict[str, int] = {}
    budgets: list[dict[str, int]] = []
    current, prefix = top, ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            name = header.group(2).replace('"', "").replace("'", "").replace(" ", "")
            if header.group(1) == "[[" and name == "budget":
                current, prefix = {"": number}, ""
                budgets.append(current)
            elif name.startswith("budget.") and budgets:
                current, prefix = budgets[-1], name.removeprefix("budget.") + "."
                current.setdefault(prefix[:-1], number)
            else:
                current, prefix = top, name + "."
                top.setdefault(name, number)
        elif key := _KEY.match(line):
            current.setdefault(prefix + key.group(1).strip("\"'"), number)
    return top, budgets


def deep_line(text: str, depth: int = 100) -> int | None:
    """The line where brackets and braces first nest ``depth`` deep (a rough count)."""
    level, quote = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        escaped = False
        for char in line:
            if quote:
                if not escaped and char == quote:
                    quote = ""
                escaped = not escaped and char == "\\" and quote == '"'
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


def _plain(value: Any, *types: type) -> bool:
    """Whether ``value`` is one of ``types`` (a boolean is no number here)."""
    return isinstance(value, types) and not isinstance(value, bool)


def closest(word: str, allowed: Iterable[str]) -> str:
    """'; did you mean 'max_madds'?' for a close word, else ''."""
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class _BudgetReader:
    """Reads one [[budget]] table; ``self.budget`` (its place and key lines) words refusals."""

    def __init__(self, source: str, budgets: list[dict[str, int]], index: int) -> None:
        self.lines = budgets[index] if index < len(budgets) else {}
        where = dict(line=self.lines.get(""), index=index + 1, key_lines=tuple(self.lines.items()))
        self.budget = Budget(ModelSpec(""), (), source, **where)
        self.fail = self.budget.error  # (message, key="") -> the refusal to raise

    def expect(self, ok: bool, key: str, value: Any, expected: str) -> None:
        if not ok:
            raise self.fail(f"expected {expected}, got {_kind(value)} {value!r}", key)

    def parsed(self, key: str, parse: Any, value: Any, types=(), wanted="") -> Any:
        """``value`` (one of ``types``) read by ``parse``, refusals naming ``key``."""
        self.expect(not types or _plain(value, *types), key, value, wanted)
        name = key.rpartition(".")[2]
        name = "limit" if name in METRICS else name  # (a limit written alone)
        try:
            return parse(value, name)
        except MbprofError as exc:
            raise self.fail(str(exc).removeprefix(f"{name}: "), key) from None

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple, where: str = "") -> None:
        if (key := next((k for k in table if k not in allowed), None)) is not None:
            why = f"unknown key {key!r}{closest(key, allowed)} (allowed: {', '.join(allowed)})"
            raise self.fail(why, f"{where}.{key}" if where else key)

    def setting(self, table: Mapping, name: str, where: str, rule: Any) -> Any:
        """``table[name]`` checked by ``rule``: bool, (lowest, highest) integers, or choices."""
        value, full = table.get(name), f"{where}.{name}" if where else name
        if value is None:
            return None
        if rule is bool:
            self.expect(isinstance(value, bool), full, value, "true or false")
        elif isinstance(rule[0], int):
            low, high = rule
            self.expect(_plain(value, int) and value >= low, full, value, f"an integer >= {low}")
            if high is not None and value > high:
                raise self.fail(f"{value} is too large; give at most {high:,}", full)
        elif value not in rule:
            raise self.fail(
                f"{value!r} is not allowed; expected one of {', '.join(rule)}"
                f"{closest(str(value), rule) if isinstance(value, str) else ''}",
                full,
            )
        return value

    def spec(self, table: Mapping[str, Any]) -> ModelSpec:
        if "model" not in table:
            raise self.fail("no 'model': name the model to check, e.g. model = \"mobilenet_v2\"")
        model = table["model"]
        ok = isinstance(model, str) and model.strip() != ""
        self.expect(ok, "model", model, "a model name (a non-empty string)")
        width, depth = table.get("width", 1.0), table.get("depth", 1.0)
        for key, value in (("width", width), ("depth", depth)):
            ok = _plain(value, int, float) and math.isfinite(value) and value > 0
            self.expect(ok, key, value, "a number > 0")
        wanted = f'an integer >= {parsing.MIN_RESOLUTION} or a string like "160x224"'
        res = table.get("resolution", 224)
        resolution = self.parsed("resolution", parsing.parse_resolution, res, (int, str), wanted)
        classes = self.setting(table, "classes", "", (1, None))
        args = table.get("args", {})
        wanted = "a table of builder arguments, e.g. args = { dropout = 0.2 }"
        self.expect(isinstance(args, dict), "args", args, wanted)
        for key, value in args.items():
            ok = isinstance(value, (str, int, float, bool))
            self.expect(ok, f"args.{key}", value, "a string, number or boolean")
            if not key.isidentifier():
                raise self.fail(f"{key!r} is not a Python identifier", f"args.{key}")
        return ModelSpec(
            model=model.strip(),
            width=float(width),
            depth=float(depth),
            resolution=resolution,
            num_classes=classes or 1000,
            kwargs=tuple(sorted(args.items())),
            reparam=bool(self.setting(table, "reparam", "budget", bool)),
        )

    def limit_value(self, value: Any, key: str, kind: str) -> float:
        """A limit in its metric's unit: '300M' -> 3e8, '1.2 MB' -> 1.2e6, '25 ms' -> 25.0."""
        examples = {"count": '"300M"', "bytes": '"1.2 MB"', "ms": '"25 ms"'}[kind]
        self.expect(_plain(value, str, int, float), key, value, f"a limit such as {examples}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{value!r} is not a finite limit", key)
        parse = {"count": parse_count, "bytes": parse_bytes, "ms": parse_ms}[kind]
        number = self.parsed(key, parse, value)
        if number <= 0:
            raise self.fail(f"{value!r} is not allowed; a limit must be > 0", key)
        return number

    def limit(self, entry: Any, key: str) -> Limit:
        """A limit alone, or a table of the limit with the settings it is measured under."""
        kind = METRICS[key].kind
        if kind == "count" or not isinstance(entry, dict):
            value, entry = self.limit_value(entry, key, kind), {}
        else:
            keys, example = TABLE_KEYS[key]
            self.unknown_keys(entry, keys, key)
            if "limit" not in entry:
                raise self.fail(f"no 'limit' in the table, e.g. limit = \"{example}\"", key)
            value = self.limit_value(entry["limit"], f"{key}.limit", kind)
        tolerance, min_time = 0.0, entry.get("min_time")  # (only latency tables have these)
        if key == "max_latency":
            tol = entry.get("tolerance", "10%")
            tolerance = self.parsed(f"{key}.tolerance", parse_percent, tol)
        if min_time is not None:
            full, wanted = f"{key}.min_time", 'a duration such as "0.5 s"'
            ms = self.parsed(full, parse_ms, min_time, (str, int, float), wanted)
            if ms <= 0:  # (parse_ms refuses what is not finite)
                raise self.fail(f"{min_time!r} must be > 0", full)
            if ms > parsing.MAX_MIN_TIME_S * 1000:  # the bound --min-time has
                too_long = f"{min_time!r} is too long; give at most {parsing.MAX_MIN_TIME_S:g} s"
                raise self.fail(too_long, full)
            min_time = ms
        rules = SETTINGS.get(key, {})
        given = {name: self.setting(entry, name, key, rule) for name, rule in rules.items()}
        settings: tuple = ()
        if key == "max_peak_memory":
            chunks, full = entry.get("chunks"), f"{key}.chunks"
            if chunks is not None:
                wanted = f'an integer >= 1 or "{choices.CHUNKS_PER_CHANNEL}"'
                chunks = self.parsed(full, choices.parse_chunks, chunks, (int, str), wanted)
            dtype, mode = given["dtype"] or "fp16", given["mode"] or "materialized"
            settings = (("dtype", dtype), ("mode", mode), ("chunks", chunks))
        elif key == "max_latency":
            settings = latency_settings(**given, min_time_ms=min_time)
        elif key == "max_model_size":
            # The default latency settings but these: a latency limit under them shares the run.
            settings = latency_settings(**given | {"backend": given["backend"] or "executorch"})
        return Limit(key, value, nearest_line(self.lines, key), tolerance, settings)

    def limits(self, table: Mapping[str, Any]) -> list[Limit]:
        limits: list[Limit] = []
        for key, value in table.items():  # in the file's order
            if key not in METRICS:
                continue
            many = isinstance(value, list) and METRICS[key].kind != "count"
            if many and not value:
                raise self.fail("an empty array; give at least one limit", key)
            limits += [self.limit(entry, key) for entry in (value if many else [value])]
        if not limits:
            raise self.fail(f"sets no limit; give at least one of {', '.join(METRICS)}")
        return limits

    def read(self, table: Any) -> Budget:
        if not isinstance(table, dict):
            raise self.fail(f"expected a table, got {_kind(table)}")
        self.unknown_keys(table, BUDGET_KEYS)
        name = table.get("name", "")
        self.expect(isinstance(name, str), "name", name, "a string")
        spec = self.spec(table)
        return replace(self.budget, spec=spec, limits=tuple(self.limits(table)), name=name.strip())


def parse_budgets(text: str, source: str = "<budgets>") -> BudgetFile:
    """Budgets from the text of a TOML budget file (model names are checked later)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason, line = str(exc), None
        if match := re.search(r"\(at line (\d+), column (\d+)\)", reason):
            reason, line = f"{reason[: match.start()].strip()} at column {match[2]}", int(match[1])
        elif "(at end of document)" in reason:
            reason = reason.replace("(at end of document)", "at the end of the file").strip()
            line = max(1, len(text.splitlines()))
        raise BudgetFileError(f"not valid TOML: {reason}", source, line) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        why = "arrays or tables are nested too deeply to read; a budget file needs a few levels"
        raise BudgetFileError(why, source, deep_line(text)) from None
    top, budgets = key_lines(text)
    for key in data:
        if key != "budget":
            why = f"unknown key {key!r} (a budget file holds [[budget]] tables)"
            raise BudgetFileError(why + closest(key, ["budget"]), source, top.get(key))
    tables = data.get("budget")
    if tables is None:
        why = "no [[budget]] tables; see examples/budgets.toml for the form"
        raise BudgetFileError(why, source)
    if not isinstance(tables, list):
        why = "'budget' must be an array of tables: write [[budget]]"
        raise BudgetFileError(why, source, top.get("budget"))
    return BudgetFile(
        source, tuple(_BudgetReader(source, budgets, i).read(t) for i, t in enumerate(tables))
    )


def load_budgets(path: str | Path) -> BudgetFile:
    path = Path(path)
    if why := "no such file" if not path.exists() else "" if path.is_file() else "is not a file":
        raise BudgetFileError(f"{why}; give the path of a TOML budget file", str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BudgetFileError(
            f"is not UTF-8 text (byte {exc.start}); a budget file is TOML", str(path)
        ) from None
    except OSError as exc:
        raise BudgetFileError(f"cannot be read: {exc.strerror}", str(path)) from None
    return parse_budgets(text, str(path))
