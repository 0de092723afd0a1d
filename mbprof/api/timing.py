"""Latency through the API: ``interleaved_latency`` (a sweep's rows timed round-robin, so a
burst of load hits every row alike) and the phone study of ``reproduce`` (``prepare_phone``:
fixed weights, one thread, eager and int8 runtimes, lowered programs cached)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbprof.api.building import build_sized, running, timing_ready
from mbprof.api.inputs import make_latency_settings
from mbprof.api.single import ROW_FAILURES
from mbprof.core.errors import MbprofError
from mbprof.core.records import ModelSpec
from mbprof.core.settings import ResolvedLatency
from mbprof.frame.rows import environment_columns, failure_text, identity_row, latency_columns

if TYPE_CHECKING:
    from torch import nn

# One configuration to time: its spec, its model and its MAdds per image.
TimingJob = tuple[ModelSpec, "nn.Module", int]


def interleaved_latency(
    jobs: Sequence[TimingJob],
    latency: ResolvedLatency,
    *,
    weights: str | Path | None = None,
    rounds: int | None = None,
    on_phase: Callable[[str], None] | None = None,
    stop_on: tuple[type[BaseException], ...] = (),
) -> list[dict[str, Any]]:
    """The latency columns of every job, timed interleaved in ``rounds`` round-robin rounds;
    a failure is its row's ``error`` unless one of ``stop_on`` (raised after the others)."""
    from mbprof.analysis.latency import harness
    from mbprof.analysis.latency.machine import environment

    failed: dict[int, BaseException] = {}
    targets, indices = [], []
    for index, (spec, model, madds) in enumerate(jobs):
        try:
            model = timing_ready(spec, model, weights)
        except Exception as exc:  # noqa: BLE001 - recorded in its row (or raised below)
            failed[index] = exc
            continue
        guard = lambda what, spec=spec: running(spec, what)  # noqa: E731
        shape = spec.input_shape(latency.batch)
        targets.append(harness.Target(model, shape, madds, spec.label, guard))
        indices.append(index)
    timed = harness.time_models(targets, latency, rounds or harness.ROUNDS, on_phase)
    results = dict(zip(indices, timed, strict=True))
    failed.update((i, r) for i, r in results.items() if isinstance(r, Exception))
    for exc in failed.values():
        if isinstance(exc, stop_on):
            raise exc
    return [
        {**environment_columns(environment(latency)), "error": failure_text(failed[i])}
        if i in failed
        else latency_columns(results[i])
        for i in range(len(jobs))
    ]


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
            mine = self._measure(spec)
            rows += mine
            if on_done is not None:
                on_done(mine[0])
        return rows

    def _measure(self, spec: ModelSpec) -> list[dict[str, Any]]:
        import torch

        from mbprof.analysis.counting import count
        from mbprof.analysis.latency.harness import time_model
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
            fp32 = replace(settings, quantize="none") if settings.quantize != "none" else None
            for attempt, names in ((settings, (main, ref)), (fp32, (ref,))):
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


def prepare_phone(specs: Sequence[ModelSpec], min_time_s: float = 1.0) -> PhoneRun:
    """The phone study of ``specs``, its runtimes resolved for this machine now."""
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
