"""Latency through the API, with the harness of ``mbprof.analysis.latency.harness``:

- ``interleaved_latency``: what a sweep calls once for all its rows (``mbprof compare``,
  ``mbprof check``), so that a burst of load on a shared machine hits every row alike and
  an outlier round is measured again::

      jobs = [(spec, model, madds), ...]            # built and counted by the sweep
      columns = interleaved_latency(jobs, latency)  # one dict per job, in order
      row.update(columns[i])

  Each dict holds the latency columns of ``mbprof.frame.rows.latency_columns`` (figures,
  verdict and environment), or, for a configuration that failed to prepare or to run, its
  environment and an ``error``.
- ``prepare_phone``: the measurements of ``reproduce``'s phone section
  (``mbprof.report.phone`` formats them): every configuration with a published phone
  latency, built once with fixed weights (seed ``SEED``, batch-norm statistics calibrated:
  ``mbprof.models.calibration``) and timed on one thread by each runtime, batch 1, fp32
  input: eager (as the report's CPU column runs it: batch norm folded, channels-last);
  onnxruntime and executorch in int8, each of which times its fp32 program too. Lowered
  programs are kept in mbprof's cache folder (``cache_programs``): the study lowers about
  58 of them, seconds each, and a second run reuses them. A runtime that is not installed
  is left out (and said so); a configuration that fails on one runtime gets an ``error``
  in that series' rows and the others go on.
"""

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

# One configuration to time: its spec, its model (built once by the sweep) and its MAdds
# per image (counted by the sweep).
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
    """The latency columns of every job, measured interleaved with the resolved settings
    ``latency`` (``make_latency_settings``): ``latency.min_time_s`` of timed runs per
    configuration, split into ``rounds`` round-robin rounds (default
    ``harness.ROUNDS``). mbprof's own models are calibrated first unless ``weights``
    were loaded (``timing_ready``). A configuration that fails gets its environment and an
    ``error``, unless its failure is one of ``stop_on``, which is raised (after the other
    configurations are measured)."""
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


# --------------------------------------------------------------------------- the phone study


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
