"""Budget files (docs/budgets.md): the TOML file read as data only into ``Budget`` records,
every refusal naming file, line and key; nothing in it is executed or imported here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mbprof.checks.file_lines import (
    BudgetFileError,
    TableReader,
    closest,
    deep_line,
    toml_error_line,
    type_name,
)
from mbprof.checks.limits import (
    LATENCY_IDENTITY,
    METRICS,
    Budget,
    BudgetFile,
    Limit,
    Metric,
    latency_settings,
    parse_amount,
)
from mbprof.core.parsing import (
    MAX_BATCH,
    MAX_MIN_TIME_S,
    MAX_THREADS,
    MAX_WARMUP,
    MIN_RESOLUTION,
    parse_resolution,
)
from mbprof.core.records import ModelSpec
from mbprof.core.settings import (
    BACKENDS,
    DEVICES,
    INT8_BACKENDS,
    LATENCY_DTYPES,
    MEM_DTYPES,
    MEM_MODES,
    QUANTIZE,
)
from mbprof.core.units import parse_ms, parse_percent

DEFAULT_MEM_DTYPE = "fp16"
DEFAULT_MEM_MODE = "materialized"
DEFAULT_LATENCY_TOLERANCE_PCT = 10.0

CONFIG_KEYS = ("name", "model", "width", "depth", "resolution", "classes", "args", "reparam")
BUDGET_KEYS = CONFIG_KEYS + tuple(METRICS)
# A limit written as a table: its keys, and a limit for the example.
TABLE_KEYS = {
    "max_peak_memory": (("limit", "dtype", "mode", "chunks"), "1.2 MB"),
    "max_latency": (("limit", "tolerance", *LATENCY_IDENTITY, "min_time", "warmup"), "25 ms"),
    "max_model_size": (("limit", "backend", "quantize"), "4 MB"),
}


class _BudgetReader(TableReader):
    def spec(self, table: Mapping[str, Any], index: int) -> ModelSpec:
        if "model" not in table:
            raise self.fail(
                "no 'model': name the model to check, e.g. model = \"mobilenet_v2\"", index
            )
        model = table["model"]
        ok = isinstance(model, str) and model.strip() != ""
        self.expect(ok, index, "model", model, "a model name (a non-empty string)")
        width = self.number(table, "width", index, 1.0)
        depth = self.number(table, "depth", index, 1.0)
        res = table.get("resolution", 224)
        ok = (isinstance(res, int) and not isinstance(res, bool)) or isinstance(res, str)
        wanted = f'an integer >= {MIN_RESOLUTION} or a string like "160x224"'
        self.expect(ok, index, "resolution", res, wanted)
        resolution = self.wrap(index, "resolution", parse_resolution, res, "resolution")
        classes = self.integer(table, "classes", index, 1)
        args = table.get("args", {})
        wanted = "a table of builder arguments, e.g. args = { dropout = 0.2 }"
        self.expect(isinstance(args, dict), index, "args", args, wanted)
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
            reparam=bool(self.boolean(table, "reparam", index, "budget")),
        )

    def limit_value(self, value: Any, index: int, key: str, metric: Metric) -> tuple[float, str]:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        examples = {"count": '"300M"', "bytes": '"1.2 MB"', "ms": '"25 ms"'}[metric.kind]
        self.expect(ok, index, key, value, f"a limit such as {examples}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{value!r} is not a finite limit", index, key)
        number = self.wrap(index, key, parse_amount, metric.kind, value, "limit")
        if number <= 0:
            raise self.fail(f"{value!r} is not allowed; a limit must be > 0", index, key)
        return number, str(value)

    def limit(self, entry: Any, index: int, key: str) -> Limit:
        """A limit alone, or a table of the limit with the settings it is measured under."""
        metric = METRICS[key]
        if metric.kind == "count" or not isinstance(entry, dict):
            value, text = self.limit_value(entry, index, key, metric)
            entry = {}
        else:
            keys, example = TABLE_KEYS[key]
            self.unknown_keys(entry, keys, index, key)
            if "limit" not in entry:
                raise self.fail(f"no 'limit' in the table, e.g. limit = \"{example}\"", index, key)
            value, text = self.limit_value(entry["limit"], index, f"{key}.limit", metric)
        tolerance, settings = 0.0, ()
        if key == "max_peak_memory":
            settings = (
                ("dtype", self.choice(entry, "dtype", index, key, MEM_DTYPES) or DEFAULT_MEM_DTYPE),
                ("mode", self.choice(entry, "mode", index, key, MEM_MODES) or DEFAULT_MEM_MODE),
                ("chunks", self.chunks(entry, index, key)),
            )
        elif key == "max_latency":
            tolerance, settings = self.latency(entry, index, key)
        elif key == "max_model_size":
            # The default latency settings but for these (a latency limit under the same
            # settings shares the run).
            settings = latency_settings(
                backend=self.choice(entry, "backend", index, key, INT8_BACKENDS) or "executorch",
                quantize=self.choice(entry, "quantize", index, key, QUANTIZE),
            )
        return Limit(key, value, text, self.lines.budget(index, key), tolerance, settings)

    def latency(self, entry: dict[str, Any], index: int, key: str) -> tuple[float, Any]:
        tolerance = DEFAULT_LATENCY_TOLERANCE_PCT
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
        return tolerance, latency_settings(
            device=self.choice(entry, "device", index, key, DEVICES),
            backend=self.choice(entry, "backend", index, key, BACKENDS),
            # A fixed bound here: checking saved results (--results) needs no CPUs; measuring
            # refuses more threads than this machine's logical CPUs, as --threads does.
            threads=self.integer(entry, "threads", index, 1, key, MAX_THREADS),
            batch=self.integer(entry, "batch", index, 1, key, MAX_BATCH),
            dtype=self.choice(entry, "dtype", index, key, LATENCY_DTYPES),
            channels_last=self.boolean(entry, "channels_last", index, key),
            fuse_bn=self.boolean(entry, "fuse_bn", index, key),
            min_time_ms=min_time,
            warmup=self.integer(entry, "warmup", index, 0, key, MAX_WARMUP),
            quantize=self.choice(entry, "quantize", index, key, QUANTIZE),
        )

    def limits(self, table: Mapping[str, Any], index: int) -> list[Limit]:
        limits: list[Limit] = []
        for key, value in table.items():  # in the file's order
            if key not in METRICS:
                continue
            many = isinstance(value, list) and METRICS[key].kind != "count"
            if many and not value:
                raise self.fail("an empty array; give at least one limit", index, key)
            limits += [self.limit(entry, index, key) for entry in (value if many else [value])]
        if not limits:
            raise self.fail(f"sets no limit; give at least one of {', '.join(METRICS)}", index)
        return limits

    def budget(self, table: Any, index: int) -> Budget:
        if not isinstance(table, dict):
            raise self.fail(f"expected a table, got {type_name(table)}", index)
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
                    + closest(key, ["budget"]),
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


def parse_budgets(text: str, source: str = "<budgets>") -> BudgetFile:
    """Budgets from the text of a TOML budget file (model names are checked later)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, reason = toml_error_line(str(exc), text)
        raise BudgetFileError(f"not valid TOML: {reason}", source, line) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise BudgetFileError(
            "arrays or tables are nested too deeply to read; a budget file needs a few levels",
            source,
            deep_line(text),
        ) from None
    return _BudgetReader(text, source).read(data)


def load_budgets(path: str | Path) -> BudgetFile:
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
