"""Limits, budgets and results (docs/budgets.md: held, tolerated, exceeded or unstable);
refusals that point at a file's line; the import gate."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec, is_import_path
from mbprof.core.settings import CHUNKS_PER_CHANNEL
from mbprof.core.units import format_value
from mbprof.frame.columns import METRICS, Metric


class BudgetFileError(MbprofError):
    """A budget file that cannot be read: the message starts with ``file:line:``."""

    def __init__(self, message: str, source: str = "", line: int | None = None) -> None:
        where = f"{source}:{line}: " if line else (f"{source}: " if source else "")
        super().__init__(where + message)
        self.source, self.line, self.reason = source, line, message


def nearest_line(lines: Mapping[str, int], key: str) -> int | None:
    """The line of ``key``, else of its nearest written parent, else of the header."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return lines.get("")


# Statuses of a checked limit, from best to worst.
HELD, TOLERATED, EXCEEDED, ERROR = "held", "tolerated", "exceeded", "error"
UNSTABLE = "unstable"  # a latency measured unstably: not judged

# Metrics measured by running the model under latency settings.
RUN_METRICS = ("max_latency", "max_model_size")
Row = Mapping[str, Any]  # a row of a comparison frame, fresh or read back

# A limit's latency settings in their order, with the measuring code's defaults.
LATENCY_SETTINGS = dict(device="cpu", backend="eager", threads=None, batch=1, dtype="fp32")
LATENCY_SETTINGS |= dict(channels_last=False, fuse_bn=False, min_time_ms=None, warmup=None)
LATENCY_SETTINGS |= {"quantize": "none"}
# Those that say what was measured (the others only say how long to measure).
LATENCY_IDENTITY = tuple(k for k in LATENCY_SETTINGS if k not in ("min_time_ms", "warmup"))


def latency_settings(**given: Any) -> tuple[tuple[str, Any], ...]:
    """A limit's latency settings: those ``given`` (None: the default), in their order."""
    return tuple((k, d if given.get(k) is None else given[k]) for k, d in LATENCY_SETTINGS.items())


@dataclass(frozen=True)
class Limit:
    """One limit on one metric, with the settings it is measured under."""

    key: str  # a key of METRICS
    value: float  # counts and bytes as integers, latency in ms
    line: int | None = None
    tolerance_pct: float = 0.0
    settings: tuple[tuple[str, Any], ...] = ()
    origin: str = "budget"  # "budget" (a file's limit) or "baseline" (a saved figure)

    @property
    def name(self) -> str:
        """The budget key (max_madds), or the column for a baseline."""
        return self.key if self.origin == "budget" else self.column

    @property
    def metric(self) -> Metric:
        return METRICS[self.key]

    def setting(self, name: str, default: Any = None) -> Any:
        return dict(self.settings).get(name, default)

    @property
    def column(self) -> str:
        efficient = self.key == "max_peak_memory" and self.setting("mode") == "efficient"
        return self.metric.column + ("_efficient" if efficient else "")

    @property
    def allowed(self) -> float:
        return self.value * (1.0 + self.tolerance_pct / 100.0)

    @property
    def conditions(self) -> str:
        """The settings in words: 'fp16, efficient' or 'cpu, eager, 2 threads'."""
        s = dict(self.settings)
        quantize = None if s.get("quantize") in (None, "none") else s["quantize"]
        if self.key == "max_peak_memory":
            efficient = s.get("mode") == "efficient"
            t = f", T={s.get('chunks') or CHUNKS_PER_CHANNEL}" if efficient else ""
            return f"{s.get('dtype')}, {s.get('mode')}{t}"
        if self.key == "max_model_size":
            return f"{s.get('backend')}, {quantize or 'fp32'}"
        if self.key != "max_latency":
            return ""
        batch, threads = s.get("batch"), s.get("threads")
        parts = [s.get("device"), s.get("backend"), s.get("dtype")]
        parts += [None if batch is None else f"batch {batch}"]
        parts += [None if threads is None else f"{threads} thread{'' if threads == 1 else 's'}"]
        parts += ["channels-last" if s.get("channels_last") else None]
        parts += ["fused BN" if s.get("fuse_bn") else None, quantize]
        return ", ".join(str(p) for p in parts if p is not None)


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

    @property
    def label(self) -> str:
        return f"{self.name} ({self.spec.label})" if self.name else self.spec.label

    def error(self, message: str, key: str = "") -> MbprofError:
        """A refusal that points where ``key`` was written (file and line, or row)."""
        if self.from_rows:
            return MbprofError(f"{self.source} row {self.index}: {message}")
        where = f"budget {self.index}, {key}" if key else f"budget {self.index}"
        line = nearest_line(dict(self.key_lines), key) or self.line
        return BudgetFileError(f"{where}: {message}", self.source, line)


@dataclass(frozen=True)
class BudgetFile:
    source: str
    budgets: tuple[Budget, ...]


@dataclass(frozen=True)
class Result:
    budget: Budget
    limit: Limit
    measured: float | None
    status: str  # HELD, TOLERATED, EXCEEDED, ERROR or UNSTABLE
    error: str = ""
    reasons: str = ""  # why an UNSTABLE latency was unstable

    @property
    def passed(self) -> bool:
        return self.status in (HELD, TOLERATED)

    @property
    def headroom(self) -> float | None:
        return None if self.measured is None else self.limit.value - self.measured

    @property
    def headroom_pct(self) -> float | None:
        if self.headroom is None or self.limit.value == 0:
            return None
        return 100.0 * self.headroom / self.limit.value

    @property
    def where(self) -> str:
        if line := self.limit.line or self.budget.line:
            return f"{self.budget.source}:{line}"
        row = f" row {self.budget.index}" if self.limit.origin == "baseline" else ""
        return self.budget.source + row

    @property
    def configuration(self) -> str:
        cond = self.limit.conditions
        return f"{self.budget.label} [{cond}]" if cond else self.budget.label

    @property
    def message(self) -> str:
        """One sentence: the metric, the configuration, the figures."""
        head, shown = f"{self.configuration}: {self.limit.name}", self.limit.metric.shown
        if self.status == ERROR:
            return f"{head} could not be measured: {self.error}"
        ref = "baseline" if self.limit.origin == "baseline" else "limit"
        against = f"{ref} {format_value(self.limit.value, shown)}"
        measured = format_value(self.measured, shown)
        if self.status == UNSTABLE:
            why = f" ({self.reasons})" if self.reasons else ""
            return (
                f"{head} neither held nor exceeded: measured {measured} against {against}, "
                f"unstably{why}; measure again on a quiet machine"
            )
        sign = 1 if self.status == HELD else -1
        room = format_value(sign * self.headroom, shown)
        pct = format_value(sign * self.headroom_pct, "percent")
        if self.status == HELD:
            return f"{head} held: measured {measured} <= {against}, headroom {room} ({pct})"
        verb = "regressed" if ref == "baseline" else "exceeded"
        if self.status == TOLERATED:
            verb = f"over its {ref} within tolerance"
        tol = format_value(self.limit.tolerance_pct, "percent")
        tail = f", tolerance {tol}" if self.limit.tolerance_pct else ""
        return f"{head} {verb}: measured {measured} > {against} by {room} ({pct}){tail}"


def failing(results: Iterable[Result], allow_unstable: bool = False) -> list[Result]:
    """The results that fail a check (unstable ones only unless ``allow_unstable``)."""
    return [r for r in results if not r.passed and not (allow_unstable and r.status == UNSTABLE)]


def judge(limit: Limit, measured: float) -> str:
    return HELD if measured <= limit.value else TOLERATED if measured <= limit.allowed else EXCEEDED


# The import gate: a budget, baseline or results file is data, so an import path in it is
# refused, before anything is imported, unless its module is allowed.
ANY_MODULE = "*"
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def parse_allow_import(
    items: Iterable[str] | None, option: str = "--allow-import"
) -> tuple[str, ...]:
    """['mypkg.models', 'a,b.c'] -> ('mypkg.models', 'a', 'b.c'); ``"*"`` allows any."""
    items = [items] if isinstance(items, str) else items or []
    allowed = [name.strip() for item in items for name in str(item).split(",")]
    for name in allowed:
        if name != ANY_MODULE and not _MODULE_NAME.fullmatch(name):
            raise MbprofError(
                f"{option}: {name!r} is not a module or package name (such as "
                "mypkg.models), nor '*' (any module)"
            )
    return tuple(dict.fromkeys(allowed))


def import_allowed(module: str, allow_import: Iterable[str]) -> bool:
    """Whether ``module`` is or is inside one of ``allow_import`` (not ``mypkgevil``)."""
    return any(
        name == ANY_MODULE or module == name or module.startswith(name + ".")
        for name in parse_allow_import(allow_import)
    )


def import_refusal(model: str, kind: str, allow_import: Iterable[str] = ()) -> str | None:
    """Why ``model``, written in a ``kind`` of file, may not be imported; None when it may."""
    module = model.partition(":")[0]
    # is_import_path: the very test by which the model lookup decides to import.
    if not is_import_path(model) or import_allowed(module, allow_import):
        return None
    flag = f"--allow-import {module}" if _MODULE_NAME.fullmatch(module) else "--allow-import"
    return (
        f"{model!r} is an import path; a {kind} may name registered models only (see mbprof "
        f"models); to let it import code, pass {flag}"
    )


def refuse_imports(budgets: Iterable[Budget], allow_import: Iterable[str] = ()) -> None:
    """Refuse the first budget whose model is an import path outside ``allow_import``."""
    allowed = parse_allow_import(allow_import)
    for budget in budgets:
        kind = "results file" if budget.from_rows else "budget file"
        if reason := import_refusal(budget.spec.model, kind, allowed):
            raise budget.error(f"model {reason}" if budget.from_rows else reason, "model")


def refuse_row_imports(rows: Iterable[Row], source: str, allow_import: Iterable[str] = ()) -> None:
    """The same for the rows of a results file read as figures (``check --results``)."""
    models = ((n, row.get("model")) for n, row in enumerate(rows, start=1))
    stubs = (Budget(ModelSpec(m), (), source, index=n, from_rows=True) for n, m in models)
    refuse_imports((b for b in stubs if isinstance(b.spec.model, str)), allow_import)
