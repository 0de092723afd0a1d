"""The measurements of ``reproduce``'s phone section (``mbprof.report.phone`` formats them):
every configuration with a published phone latency, built once with fixed weights (seed
``SEED``, batch-norm statistics calibrated: ``mbprof.models.calibration``) and timed here
on one thread by each runtime, batch 1, fp32 input:

- eager: the module as the report's CPU column runs it (batch norm folded, channels-last);
- onnxruntime and onnxruntime int8: one int8 run (static QDQ) times the fp32 session too;
- executorch and executorch int8: one int8 run (PT2E, XNNPACK) times the fp32 program too.
  Lowered programs are kept in mbprof's cache folder (``cache_programs``): the study lowers
  about 58 of them, seconds each, and a second run reuses them.

A runtime that is not installed is left out (and said so); a configuration that fails on
one runtime gets an ``error`` in that series' rows and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mbprof.api.building import build_sized, running
from mbprof.api.inputs import make_latency_settings
from mbprof.api.single import ROW_FAILURES
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.settings import ResolvedLatency
from mbprof.frame.rows import environment_columns, failure_text, identity_row

SEED = 0
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
    """The phone study, checked before anything is measured: its configurations, the
    runtimes it can time here (resolved settings and the series each gives) and those it
    cannot, with why."""

    specs: list[ModelSpec]
    runs: list[tuple[ResolvedLatency, str, str | None]]
    missing: list[str] = field(default_factory=list)

    def measure(
        self,
        on_start: Callable[[ModelSpec], None] | None = None,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """One row per configuration and series: ``series``, ``latency_ms`` (or an
        ``error``), ``madds`` and the environment."""
        rows: list[dict[str, Any]] = []
        for spec in self.specs:
            if on_start is not None:
                on_start(spec)
            mine = self._measure(spec)
            rows += mine
            if on_done is not None:
                on_done(mine[0])
        return rows

    def _measure(self, spec: ModelSpec) -> list[dict[str, Any]]:
        import torch

        from mbprof.analysis.counting import count
        from mbprof.analysis.latency import time_model
        from mbprof.models.calibration import calibrate

        series = [s for _, main, ref in self.runs for s in (main, ref) if s]
        base = identity_row(spec)
        try:
            torch.manual_seed(SEED)  # the same weights every run: the cached programs fit
            model = build_sized(spec).model
            with running(spec, "calibrating its batch norms"):
                calibrate(model, spec.resolution)
            with running(spec, "counting its MAdds"):
                base["madds"] = count(model, spec.input_shape()).madds
        except ROW_FAILURES as exc:
            return [{**base, "series": s, "error": failure_text(exc)} for s in series]
        rows = []
        for settings, main, ref in self.runs:
            for attempt, names in ((settings, (main, ref)), (_fp32(settings), (ref,))):
                if attempt is None:
                    break
                try:
                    with running(spec, f"timing it with {main}"):
                        timing = time_model(model, spec.input_shape(1), attempt, base["madds"])
                except Exception as exc:  # noqa: BLE001 - recorded in the row; Ctrl-C stops
                    rows.append({**base, "series": names[0], "error": failure_text(exc)})
                    continue  # int8 failed: its fp32 series may still run alone
                env = environment_columns(timing.environment)
                figures = (timing.latency_ms, timing.fp32_latency_ms)
                rows += [
                    {**base, **env, "series": name, "latency_ms": ms}
                    for name, ms in zip(names, figures, strict=False)
                    if name is not None
                ]
                break
        return rows


def _fp32(settings: ResolvedLatency) -> ResolvedLatency | None:
    """The fp32 run of an int8 run's backend (None for a run that is fp32 already)."""
    return replace(settings, quantize="none") if settings.quantize != "none" else None


def prepare_phone(specs: Sequence[ModelSpec], min_time_s: float = 1.0) -> PhoneRun:
    """The phone study of ``specs`` (``mbprof.report.phone.phone_configs``), its runtimes
    resolved for this machine now; one that cannot run here is left out with why."""
    runs, missing = [], []
    for options, main, ref in RUNS:
        try:
            settings = make_latency_settings(
                device="cpu", threads=1, batch=1, min_time_s=min_time_s, **options
            )
        except MbprofError as exc:
            missing.append(f"{main}{' and ' + ref if ref else ''} ({exc})")
            continue
        runs.append((settings, main, ref))
    return PhoneRun(list(specs), runs, missing)
