"""Limits checked from Python, as ``mbprof check`` checks them (docs/budgets.md):
``prepare_check`` reads and checks everything first, ``CheckRun.run`` measures each
configuration once (or reads saved results) and judges."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mbprof.api.inputs import is_module, make_latency_settings, make_spec
from mbprof.api.single import measure_rows
from mbprof.checks.baseline import baseline_budgets, tolerances_for
from mbprof.checks.budget_file import load_budgets
from mbprof.checks.limits import (
    RUN_METRICS,
    Budget,
    Result,
    import_refusal,
    parse_allow_import,
    refuse_imports,
    refuse_row_imports,
)
from mbprof.checks.matching import (
    Request,
    Settings,
    by_configuration,
    check_rows,
    covering_rows,
    latency_kwargs,
    requests_for,
)
from mbprof.core.errors import MbprofError, UnknownModelError, UserCodeExit
from mbprof.core.parsing import parse_choice, refused
from mbprof.core.records import ModelSpec
from mbprof.core.settings import ENGINES, MemorySettings, ResolvedLatency
from mbprof.frame.rows import read_frame

Row = dict[str, Any]


# A word of the registry's refusal -> the budget key it is about.
_KEY_OF_MESSAGE = {w: w for w in ("width", "depth", "resolution", "classes")} | {"argument": "args"}


def check_specs(budgets: Sequence[Budget], allow_import: Iterable[str] = ()) -> list[Budget]:
    """Each budget's configuration checked by the model registry, import paths refused first
    unless their module is in ``allow_import``; a refusal names file and line."""
    refuse_imports(budgets, allow_import)
    for budget in budgets:
        spec = budget.spec
        try:
            make_spec(
                spec.model, spec.width, spec.depth, spec.resolution, spec.num_classes, spec.kwargs
            )
        except MbprofError as exc:
            keys = [k for w, k in _KEY_OF_MESSAGE.items() if w in str(exc)]
            key = keys[0] if keys and not isinstance(exc, UnknownModelError) else "model"
            raise budget.error(str(exc), key) from None
    return list(budgets)


def measure_requests(
    requests: Sequence[Request],
    on_start: Callable[[ModelSpec], None] | None = None,
    latency: Mapping[Settings, ResolvedLatency] | None = None,
    allow_import: Iterable[str] = (),
    on_phase: Callable[[str], None] | None = None,
    on_done: Callable[[list[dict[str, Any]]], None] | None = None,
    engine: str = "fvcore",
) -> dict[Request, dict[str, Any]]:
    """One row per request, each configuration built and counted once; bad settings stop
    everything, a model that cannot run gets its row's ``error``."""
    allowed = parse_allow_import(allow_import)
    for request in requests:  # all of them, before the first is built
        if reason := import_refusal(request.spec.model, "budget or results file", allowed):
            raise MbprofError(f"model {reason}")
    rows: dict[Request, dict[str, Any]] = {}

    def resolved(r: Request) -> ResolvedLatency | None:
        if r.latency is None:
            return None
        return (latency or {}).get(r.latency) or make_latency_settings(**latency_kwargs(r.latency))

    for spec, mine in by_configuration(requests).items():
        if on_start is not None:
            on_start(spec)
        asked = [
            (MemorySettings(**dict(r.memory)) if r.memory else None, resolved(r)) for r in mine
        ]
        measured = measure_rows(
            spec, asked, on_phase=on_phase, stop_on=(MbprofError, UserCodeExit), engine=engine
        )
        rows.update(zip(mine, measured, strict=True))
        if on_done is not None:
            on_done(measured)
    return rows


@dataclass(frozen=True)
class CheckNames:
    """How refusals name check's inputs: parameters here, flags on the command line."""

    budgets: str = "budgets"  # what to give: "a budget file"
    baseline: str = "baseline"  # the input, starting a message: "--baseline"
    baseline_file: str = "baseline"  # what to give: "--baseline FILE"
    update: str = "update_baseline"  # "--update-baseline"


def check_inputs(
    budgets: str | Path | None,
    baseline: str | Path | None,
    update_baseline: bool,
    names: CheckNames = CheckNames(),
) -> None:
    if budgets is None and baseline is None:
        raise MbprofError(f"give {names.budgets}, {names.baseline_file}, or both")
    if update_baseline and baseline is None:
        raise MbprofError(f"{names.update} needs {names.baseline_file}: the file to rewrite")


@dataclass(frozen=True)
class CheckOutcome:
    """What a check found. ``results``: every limit judged (the budget file's, then the
    baseline's); ``rows``: the rows they were judged against (measured now, or read from
    saved results); ``baseline_rows``: the rows a baseline is (re)written from (the
    baseline's configurations, or the budget file's for a new one)."""

    results: tuple[Result, ...]
    rows: tuple[Row, ...]
    baseline_rows: tuple[Row, ...]
    seconds: float
    measured: bool
    update_baseline: bool = False

    @property
    def deciding(self) -> tuple[Result, ...]:
        """All results, less the baseline's when it is being rewritten."""
        if not self.update_baseline:
            return self.results
        return tuple(r for r in self.results if r.limit.origin != "baseline")

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.deciding)

    @property
    def failures(self) -> tuple[Result, ...]:
        return tuple(r for r in self.deciding if not r.passed)


@dataclass(frozen=True)
class CheckRun:
    """A check, read and checked before anything is measured; ``run()`` measures and judges."""

    budgets: tuple[Budget, ...]  # the budget file's, then the baseline's
    guarded: tuple[Budget, ...]  # the baseline's
    requests: tuple[Request, ...]
    latency: Mapping[Settings, ResolvedLatency]
    results: Path | None = None
    allow_import: tuple[str, ...] = ()
    update_baseline: bool = False
    engine: str = "fvcore"

    @property
    def configurations(self) -> int:
        return 0 if self.results is not None else len(by_configuration(self.requests))

    def run(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
        on_done: Callable[[list[Row]], None] | None = None,
    ) -> CheckOutcome:
        """Measure every configuration once, or read the saved results; judge every limit."""
        started = time.perf_counter()
        # The baseline's own configurations, or, for a new baseline, the budget file's.
        targets = self.guarded or self.budgets
        if self.results is not None:
            rows = read_frame(self.results).to_dict(orient="records")
            refuse_row_imports(rows, str(self.results), self.allow_import)
            baseline_rows = covering_rows(targets, rows)
        else:
            args = (on_start, self.latency, self.allow_import, on_phase, on_done, self.engine)
            fresh = measure_requests(self.requests, *args)
            rows = list(fresh.values())
            baseline_rows = [fresh[request] for request in requests_for(targets)]
        seconds = time.perf_counter() - started
        return CheckOutcome(
            tuple(check_rows(self.budgets, rows)),
            tuple(rows),
            tuple(baseline_rows),
            seconds,
            measured=self.results is None,
            update_baseline=self.update_baseline,
        )


def prepare_check(
    budgets: str | Path | None = None,
    *,
    baseline: str | Path | None = None,
    tolerances: Mapping[str, float | str] | None = None,
    results: str | Path | None = None,
    allow_import: Iterable[str] | str = (),
    update_baseline: bool = False,
    names: CheckNames = CheckNames(),
    modules: Any = (),
    engine: str = "fvcore",
    reparam: bool = False,
) -> CheckRun:
    """Everything ``check`` will do, read and checked first: the budget file, the baseline
    (each saved figure a limit, with the tolerance of its group), every configuration by
    the model registry, the latency settings for this machine. A model named by an import
    path is refused, before anything is imported, unless its module is in
    ``allow_import`` (``"*"``: any). A refusal in a budget file is a ``BudgetFileError``
    naming file and line. ``names`` says how refusals name these inputs. ``modules``: the
    ``nn.Module`` instances that the budget file names by their labels (a dict of label to
    module, or modules labelled by their class names). ``engine``: what counts, "fvcore" or
    "dispatch" (``mbprof.analysis.counting``). ``reparam``: every budget of the file
    measures its model's deployed form (as ``reparam = true`` does)."""
    check_inputs(budgets, baseline, update_baseline, names)
    if isinstance(modules, Mapping):
        pairs = list(modules.items())
    else:
        pairs = [(None, m) for m in ([modules] if is_module(modules) else modules)]
    for label, module in pairs:
        if not is_module(module):
            raise refused(
                "modules", f"an object of type {type(module).__name__} is not an nn.Module"
            )
        from mbprof.models.user import hold  # torch: only when there is a module to hold

        hold(module, label)
    engine = parse_choice(engine, "engine", ENGINES)
    column_tolerances = tolerances_for(tolerances)
    allowed = parse_allow_import(allow_import, "allow_import")
    read = list(load_budgets(budgets).budgets) if budgets is not None else []
    if reparam:
        read = [replace(b, spec=replace(b.spec, reparam=True)) for b in read]
    guarded: list[Budget] = []
    if baseline is not None and Path(baseline).exists():
        rows = read_frame(Path(baseline)).to_dict(orient="records")
        guarded = baseline_budgets(rows, str(baseline), column_tolerances)
    elif baseline is not None and not (update_baseline and budgets is not None):
        raise MbprofError(  # (with both, it is written from the budget file's configurations)
            f"{names.baseline}: {str(baseline)!r} does not exist; create it with "
            f"{names.update} (and {names.budgets}), or with mbprof compare --json FILE"
        )
    checked = check_specs(read + guarded, allowed)
    latency: dict[Settings, ResolvedLatency] = {}  # resolved for this machine once each
    for budget in checked if results is None else ():
        for limit in budget.limits:
            if limit.key not in RUN_METRICS or limit.settings in latency:
                continue
            try:
                latency[limit.settings] = make_latency_settings(**latency_kwargs(limit.settings))
            except MbprofError as exc:
                raise budget.error(str(exc), limit.key) from None
    return CheckRun(
        budgets=tuple(checked),
        guarded=tuple(guarded),
        requests=tuple(requests_for(checked)),
        latency=latency,
        results=None if results is None else Path(results),
        allow_import=allowed,
        update_baseline=update_baseline,
        engine=engine,
    )


def check(
    budgets: str | Path | None = None,
    *,
    on_start: Callable[[ModelSpec], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_done: Callable[[list[Row]], None] | None = None,
    **options: Any,
) -> CheckOutcome:
    """Check the limits of a budget file (TOML, see examples/budgets.toml) and/or a
    ``baseline`` (a saved ``mbprof compare --json`` result, each figure a limit with the
    tolerance of its group: ``tolerances={"latency": "20%"}``; defaults madds, params,
    memory 0%, latency 15%), measuring each configuration once, or judging the figures of
    saved ``results`` instead; ``allow_import`` names the modules a file's models may be
    imported from. ``update_baseline``: the baseline is about to be rewritten with
    ``write_baseline`` (it may not exist yet, when ``budgets`` is given; its regressions do
    not count in ``passed``). ``options`` are ``prepare_check``'s. Raises ``MbprofError``
    for bad input, before anything is measured; a limit that is exceeded is a result, not
    an error."""
    return prepare_check(budgets, **options).run(on_start, on_phase, on_done)


def write_baseline(outcome: CheckOutcome, path: str | Path) -> Path:
    """Write ``outcome.baseline_rows`` as a baseline (the JSON document of
    ``mbprof compare --json``), whole or not at all."""
    from mbprof.api.sweep import rows_to_frame
    from mbprof.core.files import write_atomic
    from mbprof.render.compare_view import compare_document
    from mbprof.render.document import to_json

    doc = compare_document(rows_to_frame(outcome.baseline_rows), title="Baseline")
    return write_atomic(path, to_json(doc))
