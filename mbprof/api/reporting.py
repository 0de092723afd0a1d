"""The MobileNetV2 paper reproduced in one folder (``mbprof reproduce``; docs/reproduce.md):
``prepare_reproduce`` checks everything first, ``ReproduceRun.write`` measures each
configuration once (``PhoneRun``: the phone study) and hands the rows to ``mbprof.report``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import timing_ready
from mbprof.api.inputs import make_latency_settings, make_spec, memory_settings
from mbprof.api.single import ROW_FAILURES, measure, memory, profile_spec
from mbprof.api.sweep import CompareRun, accuracy_for, rows_to_frame
from mbprof.core.errors import MbprofError
from mbprof.core.records import CountReport, ModelSpec
from mbprof.core.settings import ResolvedLatency
from mbprof.frame.rows import environment_columns, failure_text, identity_row
from mbprof.models import create_model
from mbprof.report import plan
from mbprof.report.folder import check_out, machine_load, write_report
from mbprof.report.plan import ReproduceResult
from mbprof.report.tables import TimmRow, timm_rows

if TYPE_CHECKING:
    import pandas as pd


def report_latency(options: dict[str, Any] | None = None) -> ResolvedLatency:
    """The CPU column's settings: one thread, channels-last, batch norm folded; then ``options``."""
    defaults = {"device": "cpu", "threads": 1, "channels_last": True, "fuse_bn": True}
    return make_latency_settings(**{**defaults, **(options or {})})


def measure_configs(
    specs: Sequence[ModelSpec],
    *,
    latency: ResolvedLatency | None,
    with_memory: bool = True,
    on_start: Callable[[ModelSpec], None] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """One comparison row per configuration, accuracy joined, fp16 memory, timed with ``latency``."""
    if not specs:  # nothing to measure: not even the machine reference that timing needs
        return rows_to_frame([])
    memory = memory_settings("fp16") if with_memory else None
    run = CompareRun(list(specs), memory, latency, accuracy_for(True))
    rows = []
    for row in run.rows(on_start=on_start):
        rows.append(row)
        if on_done is not None:
            on_done(row)
    return run.frame(rows)


def usable_specs(configs: Sequence[ModelSpec], left_out: list[str]) -> list[ModelSpec]:
    """The configurations this mbprof can build; the others go to ``left_out`` with why."""
    kept, missing = [], {}
    for spec in dict.fromkeys(configs):
        if not plan.registered(spec.model):
            missing.setdefault(spec.model, "not registered in this mbprof")
            continue
        try:
            kept.append(make_spec(spec.model, spec.width, 1.0, spec.resolution))
        except MbprofError as exc:
            missing.setdefault(f"{spec.model} {spec.width:g}", str(exc))
    left_out += [f"{n}: {why}" for n, why in missing.items() if f"{n}: {why}" not in left_out]
    return kept


def _bn_params(model: str, width: float) -> int:
    """Parameters of the batch-norm layers (scale and shift), which TF-Slim's tables leave out."""
    from torch import nn

    built = create_model(model, width=width)
    norms = [m for m in built.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return sum(p.numel() for m in norms for p in m.parameters(recurse=False))


def timm_counts() -> list[tuple[TimmRow, CountReport, CountReport]]:
    """mbprof's counts of each line of timm's model index: its ``seed`` and ``square``."""

    def counted(s: ModelSpec) -> CountReport:
        spec = make_spec(s.model, s.width, s.depth, s.resolution, s.num_classes, s.kwargs)
        return profile_spec(spec, with_memory=False).counts

    return [(row, counted(row.seed), counted(row.square)) for row in timm_rows()]


# (settings, the series its latency gives, the series its fp32 reference gives)
RUNS: tuple[tuple[dict[str, Any], str, str | None], ...] = (
    ({"backend": "eager", "channels_last": True, "fuse_bn": True}, "eager", None),
    ({"backend": "onnxruntime", "quantize": "int8"}, "onnxruntime int8", "onnxruntime"),
    (
        {"backend": "executorch", "quantize": "int8", "cache_programs": True},
        "executorch int8",
        "executorch",
    ),
)


@dataclass
class PhoneRun:
    """The phone study, checked first: configurations, runtimes (settings, series) and those
    missing here, with why."""

    specs: list[ModelSpec]
    runs: list[tuple[ResolvedLatency, str, str | None]]
    missing: list[str] = field(default_factory=list)

    def measure(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """One row per configuration and series."""
        rows: list[dict[str, Any]] = []
        for spec in self.specs:
            if on_start is not None:
                on_start(spec)
            rows += (mine := self._measure(spec))
            if on_done is not None:
                on_done(mine[0])
        return rows

    def _measure(self, spec: ModelSpec) -> list[dict[str, Any]]:
        import torch

        base = identity_row(spec)
        try:
            torch.manual_seed(0)  # the same weights every run: the cached programs fit
            measured = measure(spec)
            timing_ready(spec, measured.built.model)
        except ROW_FAILURES as exc:
            series = [s for _, main, ref in self.runs for s in (main, ref) if s]
            return [{**base, "series": s, "error": failure_text(exc)} for s in series]
        base["madds"] = measured.counts.madds
        rows = []
        for settings, main, ref in self.runs:
            attempts = [(settings, (main, ref))]
            if settings.quantize != "none":  # int8 failing, its fp32 series may still run alone
                attempts.append((replace(settings, quantize="none"), (ref,)))
            for attempt, names in attempts:
                try:
                    timing = measured.time(attempt, main)
                except Exception as exc:  # noqa: BLE001 - recorded in the row; Ctrl-C stops
                    rows.append({**base, "series": names[0], "error": failure_text(exc)})
                    continue
                env = environment_columns(timing.environment)
                figures = (timing.latency_ms, timing.fp32_latency_ms)
                rows += [
                    {**base, **env, "series": name, "latency_ms": ms}
                    for name, ms in zip(names, figures, strict=False)
                    if name
                ]
                break
        return rows


@dataclass
class ReproduceRun:
    """A run of ``reproduce``, checked before anything is measured."""

    out: Path
    parts: tuple[str, ...]
    specs: list[ModelSpec]
    latency: ResolvedLatency | None
    left_out: list[str] = field(default_factory=list)
    phone: PhoneRun | None = None  # the phone section when asked for

    @property
    def total(self) -> int:
        return len(self.specs) + (len(self.phone.specs) if self.phone else 0)

    def write(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> ReproduceResult:
        """Measure every configuration, then have ``mbprof.report`` write the folder."""
        result = ReproduceResult(out=self.out, left_out=list(self.left_out))
        given = {"bn_params": _bn_params, "timm": timm_counts, "load_at_start": machine_load()}
        progress = {"on_start": on_start, "on_done": on_done}
        with_mem = "sweep" in self.parts or "figures" in self.parts  # Table 4: counts only
        frame = measure_configs(self.specs, latency=self.latency, with_memory=with_mem, **progress)
        phone = (self.phone.measure(**progress), self.phone.missing) if self.phone else None
        memory_of = functools.partial(memory, resolution=224, mem_dtype="fp16")
        write_report(result, self.parts, frame, memory_of=memory_of, phone=phone, **given)
        return result


def prepare_reproduce(
    out: str | Path = "reports",
    *,
    parts: Sequence[str] = plan.PARTS,
    latency: bool = True,
    latency_options: dict[str, Any] | None = None,
) -> ReproduceRun:
    """Everything ``reproduce`` will do, checked first (``out``: new, empty, or mbprof's)."""
    parts = plan.check_parts(parts)
    out = Path(out)
    check_out(out, parts)
    resolved = report_latency(latency_options) if latency else None  # refused now if it can't run
    left_out = [] if latency else ["latency (CPU here): not measured in this run (--no-latency)"]
    specs = usable_specs(plan.wanted_configs(parts), left_out)
    phone = None
    if "phone" in parts and resolved is not None:
        from mbprof.report.figures import phone_configs

        runs, missing = [], []  # the phone study's runtimes, resolved for this machine now
        for options, main, ref in RUNS:
            try:
                settings = make_latency_settings(
                    device="cpu", threads=1, batch=1, min_time_s=resolved.min_time_s, **options
                )
                runs.append((settings, main, ref))
            except MbprofError as exc:
                missing.append(f"{main}{' and ' + ref if ref else ''} ({exc})")
        phone = PhoneRun(usable_specs(phone_configs(), left_out), runs, missing)
    return ReproduceRun(out, parts, specs, resolved, left_out, phone)


def reproduce(
    out: str | Path = "reports",
    *,
    parts: Sequence[str] = plan.PARTS,
    latency: bool = True,
    latency_options: dict[str, Any] | None = None,
    on_start: Callable[[ModelSpec], None] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> ReproduceResult:
    """Write ``out`` from scratch: Table 4, Table 3 (with memory analysis), the sweep, the
    Pareto figures, the inconsistencies and a README index (see ``prepare_reproduce`` for
    what is checked first and ``ReproduceRun.write`` for the writing)."""
    run = prepare_reproduce(out, parts=parts, latency=latency, latency_options=latency_options)
    return run.write(on_start=on_start, on_done=on_done)
